from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "apps.approvals"
    verbose_name = "Approvals"
    nav = [(70, "Approvals", "approvals:queue", "core.run_read_ops")]
    subnav = [("Requests", "approvals:queue", "core.run_read_ops"), ("Policies", "approvals:policies", "approvals.manage_policies")]
    role_permissions = {"admin": ["approvals.break_glass"]}

    def ready(self):
        from apps.audit.panels import register_event_panel
        from apps.core import hooks
        from apps.core.live import register_topic

        from .audit_panel import approval_panel
        from .breakglass import break_glass
        from .execution import check_job_start, record_run
        from .services import policy_for, request_approval, withdraw_requests_of

        hooks.provide("approvals", hooks.ApprovalGate(policy_for=policy_for, request=request_approval, break_glass=break_glass))
        register_topic("approvals", "core.run_read_ops")
        hooks.on_job_queued("approvals", record_run)
        hooks.on_job_start("approvals", check_job_start)
        hooks.on_credential_revoked("approval_requests", withdraw_requests_of)
        register_event_panel(approval_panel)
        from apps.core.search import on_search

        from .search import approvals

        on_search("approval", "core.run_read_ops", approvals)
