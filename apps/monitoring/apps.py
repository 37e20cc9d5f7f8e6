from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "apps.monitoring"
    verbose_name = "Monitoring"
    nav = [(10, "Monitoring", "monitoring:overview", "core.run_read_ops")]
    subnav = [
        ("Overview", "monitoring:overview", "core.run_read_ops"),
        ("Dashboards", "monitoring:dashboards", "core.run_read_ops"),
        ("Query", "monitoring:query", "core.run_read_ops"),
        ("Targets", "monitoring:targets", "core.run_read_ops"),
        ("Alerts", "monitoring:alerts", "core.run_read_ops"),
        ("Silences", "monitoring:silences", "core.run_read_ops"),
        ("Rules", "monitoring:rules", "core.run_read_ops"),
        ("Sources", "monitoring:sources", "core.manage_connectors"),
    ]
    subnav_keeps = ("source",)
    role_permissions = {"operator": ["monitoring.change_dashboard"], "admin": ["monitoring.change_dashboard"]}

    def ready(self):
        from apps.core.live import register_topic

        register_topic("dashboard", "core.run_read_ops")
        from apps.core.forms import on_field_choices

        from .models import Dashboard, PrometheusSource

        on_field_choices("source", lambda: list(PrometheusSource.objects.values_list("name", flat=True)))
        on_field_choices("dashboard", lambda: list(Dashboard.objects.values_list("slug", "title")))

    def console_processes(self, data_dir, env) -> dict[str, str]:
        """A local Prometheus (scraping this console) and Alertmanager for `bin/console`.

        runconsole calls this once before it starts the processes: the moment to
        empty the metric files of the previous run.
        """
        from .local import clear_metric_files, local_peer_commands

        clear_metric_files()
        return local_peer_commands(data_dir, env)
