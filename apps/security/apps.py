from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "apps.security"
    verbose_name = "Security"
    nav = [(20, "Security", "security:dashboard", "core.run_read_ops")]
    role_permissions = {
        "operator": ["security.triage_findings"],
        "admin": ["security.triage_findings", "security.manage_scan_roots"],
    }

    def ready(self):
        from apps.core.health import register_check
        from apps.core.live import register_topic

        from .advisory_services import health_rows

        register_topic("security", "core.run_read_ops")
        register_check(health_rows)
