from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "apps.audit"
    verbose_name = "Audit log"
    nav = [(80, "Audit log", "audit:browse", "audit.view_audit_log")]
    role_permissions = {"admin": ["audit.manage_retention"]}

    def ready(self):
        from celery.signals import worker_shutdown

        from .anchors import anchor_at_shutdown

        # A worker stopped cleanly (Ctrl-C of bin/console, a deploy) anchors the head it leaves.
        worker_shutdown.connect(anchor_at_shutdown, dispatch_uid="audit.anchor.shutdown", weak=False)
