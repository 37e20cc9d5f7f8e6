from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class CoreConfig(AppConfig):
    name = "apps.core"
    verbose_name = "Core"
    nav = [
        (60, "Operations", "core:operations", "core.run_read_ops"),
        (65, "Jobs", "core:jobs", "core.run_read_ops"),
    ]

    def ready(self):
        from .live import register_topic

        # Every app's operations register themselves when its services module loads.
        autodiscover_modules("services")
        from .jobs import job_snapshot

        register_topic("job", "core.run_read_ops", snapshot=job_snapshot)
        register_topic("jobs", "core.run_read_ops")
        register_topic("activity", "audit.view_audit_log")
        register_topic("user", lambda actor, topic: topic == f"user.{actor.user_id}")
