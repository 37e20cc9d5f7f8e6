"""The Comms setup pages' writes as operations (connectors, targets, routing and inhibition
rules, escalation policies, the SSRF allow-list, each person's delivery preference)."""

from __future__ import annotations

from apps.core.form_operations import form_operations
from apps.core.resilience import forget_breaker

from . import forms, incidents, routing
from .errors import CommsError
from .models import AllowedNetwork, Connector, DeliveryPreference, EscalationPolicy, InhibitRule, RoutingRule, Target

MANAGE = "core.manage_connectors"
# Section of the setup page -> (operation noun, model, form).
SECTIONS = {
    "connectors": ("connector", Connector, forms.ConnectorForm),
    "targets": ("target", Target, forms.TargetForm),
    "rules": ("routing_rule", RoutingRule, forms.RoutingRuleForm),
    "inhibitions": ("inhibit_rule", InhibitRule, forms.InhibitRuleForm),
    "policies": ("escalation_policy", EscalationPolicy, forms.EscalationPolicyForm),
    "networks": ("allowed_network", AllowedNetwork, forms.AllowedNetworkForm),
}


def _connector_saved(connector: Connector, old: Connector | None) -> None:
    for name in {connector.name, getattr(old, "name", connector.name)}:
        forget_breaker(f"comms:{name}")  # new settings deserve a fresh start


def _added_by(ctx, network: AllowedNetwork) -> None:
    network.created_by = network.created_by or ctx.actor.name


def _levels_saving(ctx, policy: EscalationPolicy) -> None:
    """A policy shortened below an open incident's level: that incident's next escalation cannot happen; end it
    now (in the save's transaction, with a timeline entry by whoever saved) rather than leave it due forever."""
    if policy.pk is not None:
        incidents.end_unreachable_schedules(policy, ctx.actor.name)


def _target_unused(ctx, target: Target) -> None:
    """Policies, rules and unresolved incidents name targets by value (no foreign key): deleting one they still name
    would leave an escalation or a route that fails to page anyone, or an incident whose updates (and resolution)
    fail. Refused, naming them, so they are changed (or resolved) first."""
    if refusals := _named_by(target.name):
        raise CommsError(f"Target {target.name} is {'. It is '.join(refusals)}.")


def _target_renamed(ctx, target: Target) -> None:
    """Renaming a target leaves what names it by its old name as a delete would: refused the same way."""
    old = Target.objects.filter(pk=target.pk).values_list("name", flat=True).first() if target.pk is not None else None
    if old is not None and old != target.name and (refusals := _named_by(old)):
        raise CommsError(f"Target {old} cannot be renamed: it is {'. It is '.join(refusals)} (or add {target.name} as a new target).")


def _named_by(name: str) -> list[str]:
    refusals = []
    if users := routing.naming(name):
        refusals.append(f"still named by {', '.join(users)}; remove it there first")
    if live := routing.incidents_naming(name):
        whose = "whose later updates (new alerts, the resolution) go to it"
        refusals.append(f"still notified about {', '.join(live)}, {whose}; resolve {'them' if len(live) > 1 else 'it'} first")
    return refusals


def _own(ctx, preference: DeliveryPreference) -> None:
    preference.user = ctx.user


HOOKS = {
    "connectors": {"saved": _connector_saved},
    "targets": {"deleting": _target_unused, "prepare": _target_renamed},
    "networks": {"prepare": _added_by},
    "policies": {"prepare": _levels_saving},
}
for section, (noun, model, form) in SECTIONS.items():
    form_operations(f"comms.{noun}", model, form, permission=MANAGE, **HOOKS.get(section, {}))

# Anyone signed in keeps their own delivery preference (and only their own).
form_operations(
    "comms.delivery_preference",
    DeliveryPreference,
    forms.PreferenceForm,
    permission="core.run_read_ops",
    rows=lambda ctx: DeliveryPreference.objects.filter(user_id=ctx.actor.user_id),
    prepare=_own,
)
