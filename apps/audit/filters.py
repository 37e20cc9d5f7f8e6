"""Filtering and keyset paging of the audit log, shared by the browser and the export."""

from __future__ import annotations

from datetime import datetime

from django import forms
from django.db.models import Q, QuerySet

from .models import AuditEvent


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False)
    operation = forms.CharField(
        required=False, help_text="A name or its start (infrastructure.), or a word of it (deploy matches infrastructure.deploy)."
    )
    app = forms.CharField(required=False)
    outcome = forms.ChoiceField(required=False, choices=[("", "any")] + AuditEvent.OUTCOMES)
    channel = forms.ChoiceField(required=False, choices=[("", "any")] + AuditEvent.CHANNELS)
    target = forms.CharField(required=False, help_text="Prefix match.")
    correlation = forms.CharField(
        required=False, max_length=64, label="Flow", help_text="A correlation id: approval-<id>, or a request id."
    )
    since = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    def params(self) -> dict:
        """The active filters, JSON-ready (for the audit event of the browse itself)."""
        if not self.is_valid():
            return {}
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.cleaned_data.items() if v}


def _operation_matches(value: str) -> Q:
    """A dotted value is a name's start (`infrastructure.`, `storage.list`: an index prefix scan);
    a bare word is an app's start or any segment's start (`deploy` finds `infrastructure.deploy`
    and `infrastructure.deploy_rollback`), which no index serves."""
    if "." in value:
        return Q(operation__startswith=value)
    return Q(operation__startswith=value) | Q(operation__contains="." + value)


def _seq_at(moment: datetime, *, after: bool) -> int | None:
    """Time bounds become seq bounds: `at` is taken under the chain lock, so it grows with seq."""
    qs = AuditEvent.objects.filter(at__gte=moment).order_by("at") if after else AuditEvent.objects.filter(at__lte=moment).order_by("-at")
    return qs.values_list("seq", flat=True).first()


def filtered(form: AuditFilterForm) -> QuerySet:
    qs = AuditEvent.objects.all()
    if not form.is_valid():
        return qs.none()
    data = form.cleaned_data
    for field in ("actor", "app", "outcome", "channel"):
        if data.get(field):
            qs = qs.filter(**{field: data[field]})
    if data.get("operation"):
        qs = qs.filter(_operation_matches(data["operation"].strip()))
    if data.get("correlation"):
        qs = qs.filter(correlation_id=data["correlation"].strip())
    if data.get("target"):
        qs = qs.filter(target__startswith=data["target"])
    if data.get("since"):
        first = _seq_at(data["since"], after=True)
        qs = qs.filter(seq__gte=first) if first is not None else qs.none()
    if data.get("until"):
        last = _seq_at(data["until"], after=False)
        qs = qs.filter(seq__lte=last) if last is not None else qs.none()
    return qs


def page_before(qs: QuerySet, before: int | None, size: int) -> tuple[list[AuditEvent], int | None]:
    """Newest first, `size` events older than `before`: constant time at any depth."""
    if before is not None:
        qs = qs.filter(seq__lt=before)
    rows = list(qs.order_by("-seq")[: size + 1])
    has_more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1].seq if has_more else None)


def iterate(qs: QuerySet, chunk: int = 2000):
    """Every matching event, newest first, fetched in keyset chunks (bounded memory)."""
    before = None
    while True:
        rows, before = page_before(qs, before, chunk)
        yield from rows
        if before is None:
            return
