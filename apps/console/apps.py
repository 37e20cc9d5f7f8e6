from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The console's own pages, above every other app: the home page that gathers them
    (health, approvals, jobs, audit), the navigation every page shows, and the demo seeding."""

    name = "apps.console"
    verbose_name = "Console"
