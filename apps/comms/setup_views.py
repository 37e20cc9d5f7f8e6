"""The Comms setup pages (admins): connectors, targets, routing and inhibition
rules, escalation policies and the SSRF allow-list. One list + form view for
all of them; every save and delete is audited (never with a secret)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.db.models import ProtectedError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.audit.writer import record
from apps.core.middleware import client_ip
from apps.core.resilience import forget_breaker
from apps.core.web import actor_of, console_view, require_perm

from . import forms
from .models import AllowedNetwork, Connector, EscalationPolicy, InhibitRule, RoutingRule, Target


@dataclass(frozen=True)
class Section:
    title: str
    model: type
    form: type
    columns: tuple[tuple[str, str], ...]  # (heading, attribute or callable name on the row)
    help: str


SECTIONS = {
    "connectors": Section(
        "Connectors", Connector, forms.ConnectorForm,
        (("Name", "name"), ("Type", "get_kind_display"), ("URL", "url_display"), ("Secret", "secret_state"), ("Enabled", "enabled")),
        "Slack, Teams, SMTP, SMS and webhook connections. Secrets are stored encrypted and never shown again.",
    ),
    "targets": Section(
        "Targets", Target, forms.TargetForm, (("Name", "name"), ("Connector", "connector"), ("Recipient", "recipient")),
        "Named destinations that rules and escalation levels refer to.",
    ),
    "rules": Section(
        "Routing rules", RoutingRule, forms.RoutingRuleForm,
        (("#", "position"), ("Name", "name"), ("Severities", "severities"), ("Services", "services"), ("Labels", "labels"),
         ("Targets", "targets"), ("Group by", "group_by"), ("Default", "is_default"), ("Enabled", "enabled")),
        "The first matching rule (by position) picks the targets, unless it says continue; else the default rule.",
    ),
    "inhibitions": Section(
        "Inhibition rules", InhibitRule, forms.InhibitRuleForm,
        (("Name", "name"), ("While firing", "source_match"), ("Mute", "target_match"), ("Equal on", "equal"), ("Enabled", "enabled")),
        "While an alert matching the first set fires, alerts matching the second (equal on the listed labels) are muted.",
    ),
    "policies": Section(
        "Escalation policies", EscalationPolicy, forms.EscalationPolicyForm, (("Name", "name"), ("Levels", "levels")),
        "Level 1 is paged when an incident opens; each next level after_minutes later while nobody acknowledges.",
    ),
    "networks": Section(
        "SSRF allow-list", AllowedNetwork, forms.AllowedNetworkForm, (("Network", "cidr"), ("Note", "note"), ("Added by", "created_by")),
        "Webhook, Teams, Slack and SMS URLs resolving to loopback, private or link-local addresses are refused unless listed here.",
    ),
}  # fmt: skip


def _cells(obj, section: Section) -> list:
    cells = []
    for _, attr in section.columns:
        if attr == "secret_state":
            cells.append("stored" if obj.secret else ("from environment" if obj.has_secret else "none"))
            continue
        value = getattr(obj, attr)
        cells.append(value() if callable(value) else value)
    return cells


@console_view
def setup(request, section: str = "connectors", pk: int | None = None):
    require_perm(request, "core.manage_connectors")
    spec = SECTIONS.get(section)
    if spec is None:
        return redirect("comms:setup")
    instance = get_object_or_404(spec.model, pk=pk) if pk else None
    form = spec.form(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        obj = form.save(commit=False)
        if isinstance(obj, AllowedNetwork) and not obj.created_by:
            obj.created_by = request.user.username
        obj.save()
        if isinstance(obj, Connector):
            forget_breaker(f"comms:{obj.name}")
        _audit(request, f"comms.{section}_save", str(obj), {"changed": sorted(form.changed_data)})
        messages.success(request, f"Saved {obj}.")
        return redirect("comms:setup_section", section=section)
    rows = [(obj, _cells(obj, spec)) for obj in spec.model.objects.all()[:500]]
    context = {"sections": SECTIONS, "section": section, "spec": spec, "form": form, "rows": rows, "edited": instance}
    return render(request, "comms/setup.html", context)


@console_view
@require_POST
def setup_delete(request, section: str, pk: int):
    require_perm(request, "core.manage_connectors")
    spec = SECTIONS.get(section)
    if spec is None:
        return redirect("comms:setup")
    obj = get_object_or_404(spec.model, pk=pk)
    try:
        obj.delete()
    except ProtectedError:
        messages.error(request, f"{obj} is still used (by targets or deliveries); remove those first.")
    else:
        _audit(request, f"comms.{section}_delete", str(obj))
        messages.success(request, f"Deleted {obj}.")
    return redirect("comms:setup_section", section=section)


def _audit(request, operation: str, target: str, params: dict | None = None) -> None:
    record(
        operation=operation, outcome="ok", channel="web", actor=actor_of(request), target=target, params=params or {},
        client_ip=client_ip(request), request_id=getattr(request, "request_id", ""),
    )  # fmt: skip
