from django.apps import AppConfig


class CommsConfig(AppConfig):
    name = "apps.comms"
    verbose_name = "Comms"
    nav = [(45, "Incidents", "comms:incidents", "core.run_read_ops")]
    subnav = [
        ("Incidents", "comms:incidents", "core.run_read_ops"),
        ("Deliveries", "comms:deliveries", "core.run_read_ops"),
        ("Setup", "comms:setup", "core.manage_connectors"),
    ]

    def ready(self):
        from apps.core.live import register_topic

        from . import broadcasts, setup_operations, signals  # noqa: F401  (notifications through comms; setup writes)

        broadcasts.connect()

        register_topic("incidents", "core.run_read_ops")
        register_topic("incident", "core.run_read_ops")
        register_topic("deliveries", "core.run_read_ops")
        from apps.core.forms import on_field_choices

        from .models import Connector, EscalationPolicy

        on_field_choices("connector", lambda: list(Connector.objects.values_list("name", flat=True)))
        on_field_choices("escalation_policy", lambda: list(EscalationPolicy.objects.values_list("name", flat=True)))
        from apps.core.search import on_search

        from .search import incidents

        on_search("incident", "core.run_read_ops", incidents)
