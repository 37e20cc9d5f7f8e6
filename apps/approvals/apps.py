from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "apps.approvals"
    verbose_name = "Approvals"
    nav = [(70, "Approvals", "approvals:queue", "core.run_read_ops")]

    def ready(self):
        from apps.core.live import register_topic

        register_topic("approvals", "core.run_read_ops")
