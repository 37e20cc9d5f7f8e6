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

        from . import broadcasts, setup_operations, signals  # noqa: F401  (notifications through comms; setup writes)

        broadcasts.connect()

        register_topic("incidents", "core.run_read_ops")
        register_topic("incident", "core.run_read_ops")
        register_topic("deliveries", "core.run_read_ops")
