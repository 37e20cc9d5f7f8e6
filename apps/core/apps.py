from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.module_loading import autodiscover_modules


class CoreConfig(AppConfig):
    name = "apps.core"
    verbose_name = "Core"
    nav = [
        (60, "Operations", "core:operations", "core.run_read_ops"),
        (65, "Jobs", "core:jobs", "core.run_read_ops"),
    ]
    subnav = [
        ("Operations", "core:operations", "core.run_read_ops"),
        ("Jobs", "core:jobs", "core.run_read_ops"),
        ("Health", "core:health", "core.run_read_ops"),
    ]

    def ready(self):
        from celery.signals import task_postrun, worker_process_shutdown
        from django.core.signals import request_finished

        from .live import register_topic
        from .metrics import forget_process, record_breaker_states

        # Every app's operations register themselves when its services module loads.
        autodiscover_modules("services")
        from . import hooks, search  # noqa: F401 - search registers core.search
        from .jobs import cancel_queued_work, job_snapshot

        hooks.on_credential_revoked("jobs", cancel_queued_work)
        register_topic("job", "core.run_read_ops", snapshot=job_snapshot)
        register_topic("jobs", "core.run_read_ops")
        register_topic("user", lambda actor, topic: topic == f"user.{actor.user_id}")
        # Keep each process's breaker states current in the shared metric files (health page, /metrics).
        request_finished.connect(record_breaker_states, dispatch_uid="core.breakers.request")
        task_postrun.connect(record_breaker_states, dispatch_uid="core.breakers.task", weak=False)
        worker_process_shutdown.connect(forget_process, dispatch_uid="core.metrics.shutdown", weak=False)


class ReadOnlyAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the read-only site as its default site."""

    default = False  # "apps.core" itself is CoreConfig
    default_site = "apps.core.admin_site.ReadOnlyAdminSite"
