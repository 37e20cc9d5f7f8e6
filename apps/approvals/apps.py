from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "apps.approvals"
    verbose_name = "Approvals"
    nav = [(70, "Approvals", "approvals:queue", "core.run_read_ops")]
    role_permissions = {"admin": ["approvals.break_glass"]}

    def ready(self):
        from apps.audit.panels import register_event_panel
        from apps.core.hooks import on_job_start
        from apps.core.live import register_topic

        from .audit_panel import approval_panel
        from .execution import check_job_start

        register_topic("approvals", "core.run_read_ops")
        on_job_start("approvals", check_job_start)
        register_event_panel(approval_panel)
