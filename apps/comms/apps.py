from django.apps import AppConfig


class CommsConfig(AppConfig):
    name = "apps.comms"
    verbose_name = "Comms"
    nav = [
        (40, "Incidents", "comms:incidents", "core.run_read_ops"),
        (45, "Deliveries", "comms:deliveries", "core.run_read_ops"),
    ]

    def ready(self):
        from apps.core.live import register_topic
        from apps.core.outbound import register_guard

        from . import broadcasts, signals  # noqa: F401  (notifications through comms)
        from .guard import check_url

        register_guard(check_url)  # audit sinks connect under the same SSRF rules

        broadcasts.connect()

        register_topic("incidents", "core.run_read_ops")
        register_topic("incident", "core.run_read_ops")
        register_topic("deliveries", "core.run_read_ops")
