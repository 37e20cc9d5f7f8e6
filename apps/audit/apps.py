from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "apps.audit"
    verbose_name = "Audit log"
    nav = [(80, "Audit log", "audit:browse", "audit.view_audit_log")]

    def ready(self):
        from apps.core.search import on_search

        from .search import events

        on_search("audit event", "audit.view_audit_log", events)
