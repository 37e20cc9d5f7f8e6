"""The Comms setup pages (admins): connectors, targets, routing and inhibition
rules, escalation policies and the SSRF allow-list. One list + form view for
all of them; every save and delete is an operation through the gateway (audited, never
with a secret: apps/comms/setup_operations.py)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.core.errors import OpsError
from apps.core.form_operations import submitted
from apps.core.web import call, call_from_form, console_view, require_perm

from .setup_operations import SECTIONS as OPERATIONS


@dataclass(frozen=True)
class Section:
    """How a setup page shows one kind of row; its model, form and operations: setup_operations.SECTIONS."""

    title: str
    columns: tuple[tuple[str, str], ...]  # (heading, attribute or callable name on the row)
    help: str


SECTIONS = {
    "connectors": Section(
        "Connectors",
        (("Name", "name"), ("Type", "get_kind_display"), ("URL", "url_display"), ("Secret", "secret_state"), ("Enabled", "enabled")),
        "Slack, Teams, SMTP, SMS and webhook connections. Secrets are stored encrypted and never shown again.",
    ),
    "targets": Section(
        "Targets", (("Name", "name"), ("Connector", "connector"), ("Recipient", "recipient")),
        "Named destinations that rules and escalation levels refer to.",
    ),
    "rules": Section(
        "Routing rules",
        (("#", "position"), ("Name", "name"), ("Severities", "severities"), ("Services", "services"), ("Labels", "labels"),
         ("Targets", "targets"), ("Group by", "group_by"), ("Default", "is_default"), ("Enabled", "enabled")),
        "The first matching rule (by position) picks the targets, unless it says continue; else the default rule.",
    ),
    "inhibitions": Section(
        "Inhibition rules",
        (("Name", "name"), ("While firing", "source_match"), ("Mute", "target_match"), ("Equal on", "equal"), ("Enabled", "enabled")),
        "While an alert matching the first set fires, alerts matching the second (equal on the listed labels) are muted.",
    ),
    "policies": Section(
        "Escalation policies", (("Name", "name"), ("Levels", "levels")),
        "Level 1 is paged when an incident opens; each next level after_minutes later while nobody acknowledges.",
    ),
    "networks": Section(
        "SSRF allow-list", (("Network", "cidr"), ("Note", "note"), ("Added by", "created_by")),
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
    noun, model, form_class = OPERATIONS[section]
    instance = get_object_or_404(model, pk=pk) if pk else None
    form, status = form_class(request.POST or None, instance=instance), 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            outcome, status = call_from_form(request, form, f"comms.save_{noun}", {"id": pk, "data": submitted(request)})
            if outcome:
                messages.success(request, f"Saved {outcome.result.name}.")
                return redirect("comms:setup_section", section=section)
    rows = [(obj, _cells(obj, spec)) for obj in model.objects.all()[:500]]
    context = {"sections": SECTIONS, "section": section, "spec": spec, "form": form, "rows": rows, "edited": instance}
    return render(request, "comms/setup.html", context, status=status)


@console_view
@require_POST
def setup_delete(request, section: str, pk: int):
    require_perm(request, "core.manage_connectors")
    spec = SECTIONS.get(section)
    if spec is None:
        return redirect("comms:setup")
    try:
        outcome = call(request, f"comms.delete_{OPERATIONS[section][0]}", {"id": pk})
    except OpsError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Deleted {outcome.result.name}.")
    return redirect("comms:setup_section", section=section)
