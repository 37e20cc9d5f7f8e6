"""Demo configuration for bin/console: an email connector on the SMTP settings
from the environment, a default route, an inhibition rule and an escalation
policy. Idempotent."""

from .models import Connector, EscalationPolicy, InhibitRule, RoutingRule, Target


def seed(stdout) -> None:
    email, _ = Connector.objects.get_or_create(name="email", defaults={"kind": Connector.EMAIL})
    Target.objects.get_or_create(name="ops-email", defaults={"connector": email, "recipient": "ops@example.test"})
    policy, _ = EscalationPolicy.objects.get_or_create(
        name="default-oncall", defaults={"description": "Ops by email, again after 15 minutes", "levels": [
            {"after_minutes": 0, "targets": ["ops-email"]}, {"after_minutes": 15, "targets": ["ops-email"]}]},
    )  # fmt: skip
    critical = {"position": 10, "severities": ["critical"], "targets": ["ops-email"], "escalation_policy": policy, "group_by": ["service"]}
    RoutingRule.objects.get_or_create(name="critical pages on-call", defaults=critical)
    RoutingRule.objects.get_or_create(name="default", defaults={"is_default": True, "position": 1000, "targets": ["ops-email"]})
    InhibitRule.objects.get_or_create(
        name="critical mutes warnings of the same service",
        defaults={"source_match": {"severity": "critical"}, "target_match": {"severity": "warning"}, "equal": ["service"]},
    )
    stdout.write("  comms: email connector, default route, inhibition rule and escalation policy (Comms setup page).")
