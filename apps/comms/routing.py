"""Who gets a message: routing rules (first match wins unless it says continue,
then the default route), fingerprints for duplicate suppression, and
inhibition (a firing critical alert mutes matching warnings) — in the spirit
of Alertmanager's routing tree."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from .errors import CommsError
from .models import Alert, Connector, EscalationPolicy, Incident, InhibitRule, RoutingRule, Target


@dataclass(frozen=True)
class Destination:
    connector: Connector
    recipient: str
    target: str = ""  # the target's name, when it came from one

    @property
    def label(self) -> str:
        return self.target or f"{self.connector.name}{' ' + self.recipient if self.recipient else ''}"


@dataclass
class Route:
    rules: list[RoutingRule] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    policy: EscalationPolicy | None = None
    group_by: list[str] = field(default_factory=list)
    group_wait_seconds: int = 0

    @property
    def rule(self) -> RoutingRule | None:
        return self.rules[0] if self.rules else None


def effective_labels(labels: dict, **known: str) -> dict[str, str]:
    """The labels rules match on: the given ones plus type/severity/priority/service."""
    merged = {str(k): str(v) for k, v in (labels or {}).items()}
    merged.update({k: str(v) for k, v in known.items() if v})
    return merged


def matches(rule: RoutingRule, labels: dict[str, str]) -> bool:
    if rule.severities and labels.get("severity") not in rule.severities:
        return False
    if rule.priorities and labels.get("priority") not in rule.priorities:
        return False
    if rule.services and labels.get("service", labels.get("app")) not in rule.services:
        return False
    return all(labels.get(k) == v for k, v in (rule.labels or {}).items())


def route(labels: dict[str, str], *, notifications: bool = False) -> Route:
    """The matching rules in order and their targets. User notifications follow only
    rules that name them (labels type=notification) and never the default route."""
    rules = list(RoutingRule.objects.filter(enabled=True).select_related("escalation_policy"))
    if notifications:
        rules = [r for r in rules if (r.labels or {}).get("type") == "notification"]
    chosen = []
    for rule in (r for r in rules if not r.is_default):
        if matches(rule, labels):
            chosen.append(rule)
            if not rule.continue_matching:
                break
    if not chosen and not notifications:
        chosen = [r for r in rules if r.is_default][:1]
    result = Route(rules=chosen)
    for rule in chosen:
        result.targets += [t for t in rule.targets if t not in result.targets]
        result.policy = result.policy or rule.escalation_policy
    if chosen:
        result.group_by, result.group_wait_seconds = list(chosen[0].group_by or []), chosen[0].group_wait_seconds
    return result


def destinations(target_names: list[str]) -> list[Destination]:
    """Named targets in the given order; an unknown name is an error a person can fix."""
    found = {t.name: t for t in Target.objects.filter(name__in=target_names).select_related("connector")}
    missing = [n for n in target_names if n not in found]
    if missing:
        raise CommsError(f"No target named {', '.join(missing)}; see the Comms setup page for the configured targets.")
    return [Destination(found[n].connector, found[n].recipient, n) for n in dict.fromkeys(target_names)]


def naming(target_name: str) -> list[str]:
    """The escalation policies (with their levels) and routing rules that name a target, e.g.
    ["escalation policy api-oncall (level 2)", "routing rule api"]: what would fail to page it if it went. Read and
    filtered here: SQLite (the embedded default) has no JSON "contains" lookup."""
    found = []
    for policy in EscalationPolicy.objects.order_by("name"):
        levels = [str(i) for i, level in enumerate(policy.levels or [], 1) if target_name in (level.get("targets") or [])]
        if levels:
            found.append(f"escalation policy {policy.name} (level{'s' if len(levels) > 1 else ''} {', '.join(levels)})")
    rules = RoutingRule.objects.order_by("position", "id").values_list("name", "targets")
    return found + [f"routing rule {name}" for name, targets in rules if target_name in (targets or [])]


def incidents_naming(target_name: str) -> list[str]:
    """The unresolved incidents routed to a target, e.g. ["incident #12 (open)", "incident #13 (acknowledged)"]: their
    later notifications (a new alert of the group, the resolution) go to it, and would fail if it went — resolving
    one would. Filtered here as in naming(); the unresolved incidents are few."""
    unresolved = Incident.objects.exclude(status=Incident.RESOLVED).order_by("pk").values_list("pk", "status", "targets")
    return [f"incident #{pk} ({status})" for pk, status, targets in unresolved if target_name in (targets or [])]


def fingerprint(alert_type: str, labels: dict[str, str], key: str = "") -> str:
    """A given dedup key, or the alert type plus its sorted labels."""
    basis = key or json.dumps([alert_type, sorted(labels.items())], separators=(",", ":"))
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


def group_key(route_: Route, labels: dict[str, str], alert_fingerprint: str) -> str:
    if route_.rule is None or not route_.group_by:
        return f"alert:{alert_fingerprint}"
    values = ",".join(f"{name}={labels.get(name, '')}" for name in route_.group_by)
    return f"rule:{route_.rule.pk}:{values}"[:300]


def inhibiting_alert(labels: dict[str, str], own_fingerprint: str) -> Alert | None:
    """A firing alert that mutes one with these labels, if an inhibition rule says so."""
    rules = [r for r in InhibitRule.objects.filter(enabled=True) if _has(labels, r.target_match)]
    if not rules:
        return None
    firing = Alert.objects.filter(status=Alert.FIRING, inhibited_by__isnull=True).exclude(fingerprint=own_fingerprint)
    for source in firing.order_by("first_seen")[:2000]:
        source_labels = effective_labels(source.labels, type=source.type, severity=source.severity)
        for rule in rules:
            if _has(source_labels, rule.source_match) and all(source_labels.get(k) == labels.get(k) for k in rule.equal or []):
                return source
    return None


def _has(labels: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())
