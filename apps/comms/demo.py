"""Demo configuration for bin/console: an email connector on the SMTP settings
from the environment, a default route, an inhibition rule and an escalation
policy. Idempotent."""

from apps.accounts.actors import Actor
from apps.core.gateway import invoke

from .models import Connector, EscalationPolicy, Incident, InhibitRule, RoutingRule, Target


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
    if not Incident.objects.exists():
        for severity, kind, title, service in (
            ("critical", "HighErrorRate", "web: 5xx above 5 % for 10 minutes", "web"),
            ("warning", "DiskFilling", "db-1: disk 85 % full, full in about 3 days", "db"),
        ):
            params = {"type": kind, "severity": severity, "title": title, "service": service, "labels": {"env": "production"}}
            invoke("comms.send_alert", Actor.system(), params, channel="system")
        stdout.write("  comms: two demo incidents (Comms → Incidents)")
