from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "apps.audit"
    verbose_name = "Audit log"
    nav = [(80, "Audit log", "audit:browse", "audit.view_audit_log")]
    role_permissions = {"admin": ["audit.manage_audit_sinks"]}

    def ready(self):
        from apps.core.health import register_check
        from apps.core.metrics import SCRAPE_COLLECTORS

        from .metrics import StreamLagCollector, health_checks

        if not any(isinstance(c, StreamLagCollector) for c in SCRAPE_COLLECTORS):
            SCRAPE_COLLECTORS.append(StreamLagCollector())
        register_check(health_checks)
