from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "apps.security"
    verbose_name = "Security"
    nav = [(20, "Security", "security:dashboard", "core.run_read_ops")]
    subnav = [
        ("Summary", "security:dashboard", "core.run_read_ops"),
        ("Findings", "security:findings", "core.run_read_ops"),
        ("Scans", "security:scans", "core.run_read_ops"),
        ("New scan", "security:new_scan", "core.run_write_ops"),
        ("Scan roots", "security:roots", "security.manage_scan_roots"),
    ]
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
        from apps.core.search import on_search

        from .search import findings

        on_search("finding", "core.run_read_ops", findings)
        from apps.core.hooks import on_job_ended

        from .upload_services import release_upload

        on_job_ended("security", release_upload)  # an upload is kept for its job, and no longer
