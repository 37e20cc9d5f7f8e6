from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "apps.approvals"
    verbose_name = "Approvals"
    nav = [(70, "Approvals", "approvals:queue", "core.run_read_ops")]

    def ready(self):
        from apps.audit.panels import register_event_panel
        from apps.core.live import register_topic

        from .audit_panel import approval_panel

        register_topic("approvals", "core.run_read_ops")
        register_event_panel(approval_panel)
