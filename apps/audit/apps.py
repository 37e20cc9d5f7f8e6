from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "apps.audit"
    verbose_name = "Audit log"
    nav = [(80, "Audit log", "audit:browse", "audit.view_audit_log")]
    role_permissions = {"admin": ["audit.manage_retention", "audit.manage_audit_sinks"]}

    def ready(self):
        from celery.signals import worker_shutdown

        from apps.core import hooks
        from apps.core.health import register_check
        from apps.core.live import register_topic
        from apps.core.metrics import SCRAPE_COLLECTORS

        from .activity import record_and_show
        from .anchors import anchor_at_shutdown
        from .metrics import StreamLagCollector, health_checks

        hooks.provide("audit", record_and_show)  # the gateway's one event per call
        register_topic("activity", "audit.view_audit_log")

        # A worker stopped cleanly (Ctrl-C of bin/console, a deploy) anchors the head it leaves.
        worker_shutdown.connect(anchor_at_shutdown, dispatch_uid="audit.anchor.shutdown", weak=False)
        if not any(isinstance(c, StreamLagCollector) for c in SCRAPE_COLLECTORS):
            SCRAPE_COLLECTORS.append(StreamLagCollector())
        register_check(health_checks)
        from apps.core.search import on_search

        from .search import events

        on_search("audit event", "audit.view_audit_log", events)
