from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "apps.audit"
    verbose_name = "Audit log"
    nav = [(80, "Audit log", "audit:browse", "audit.view_audit_log")]
