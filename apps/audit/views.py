from __future__ import annotations

import csv
import json

from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone

from apps.core.middleware import client_ip
from apps.core.web import actor_of, console_view, require_perm

from . import bundle, keys
from .filters import AuditFilterForm, filtered, iterate, page_before
from .models import AuditEvent
from .panels import render_panels
from .writer import record

PAGE_SIZE = 50
EXPORT_FIELDS = ["seq", "at", "actor", "token", "channel", "operation", "app", "target", "params", "outcome", "error",
                 "duration_ms", "client_ip", "request_id", "approval_id", "correlation_id", "prev_hash", "hash"]  # fmt: skip


def _audit_access(request, operation: str, params: dict) -> None:
    record(
        operation=operation, outcome="ok", channel="web", actor=actor_of(request), params=params,
        client_ip=client_ip(request), request_id=getattr(request, "request_id", ""),
    )  # fmt: skip


def _before(request) -> int | None:
    value = request.GET.get("before", "")
    return int(value) if value.isdigit() else None


@console_view
def browse(request):
    require_perm(request, "audit.view_audit_log")
    form = AuditFilterForm(request.GET or None)
    qs = filtered(form) if form.is_bound else AuditEvent.objects.all()
    before = _before(request)
    events, next_before = page_before(qs, before, PAGE_SIZE)
    _audit_access(request, "audit.browse", {**form.params(), **({"before": before} if before else {})})
    query = request.GET.copy()
    query.pop("before", None)
    context = {
        "form": form,
        "events": events,
        "next_before": next_before,
        "query": query.urlencode(),
        "live": before is None and not form.is_bound,
        "link_base": reverse("audit:browse"),  # rows link to link_base + seq: one reverse() per page, not per row
    }
    template = "audit/_rows.html" if request.htmx and before else "audit/browse.html"
    return render(request, template, context)


@console_view
def detail(request, seq: int):
    require_perm(request, "audit.view_audit_log")
    event = get_object_or_404(AuditEvent, seq=seq)
    _audit_access(request, "audit.view_event", {"seq": seq})
    neighbours = {
        "older": AuditEvent.objects.filter(seq=seq - 1).values_list("seq", flat=True).first(),
        "newer": AuditEvent.objects.filter(seq=seq + 1).values_list("seq", flat=True).first(),
    }
    params = json.dumps(event.params, indent=2, sort_keys=True, ensure_ascii=False)
    panels = render_panels(request, event, actor_of(request))
    return render(request, "audit/detail.html", {"event": event, "params": params, "panels": panels, **neighbours})


class _Echo:
    def write(self, value):
        return value


def _row(event: AuditEvent) -> dict:
    row = {f: getattr(event, f) for f in EXPORT_FIELDS}
    row["at"] = event.at.isoformat()
    return row


@console_view
def export(request, fmt: str):
    require_perm(request, "audit.export_audit_log")
    form = AuditFilterForm(request.GET or None)
    qs = filtered(form) if form.is_bound else AuditEvent.objects.all()
    _audit_access(request, "audit.export", {**form.params(), "format": fmt})
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    if fmt == "csv":
        writer = csv.writer(_Echo())

        def rows():
            yield writer.writerow(EXPORT_FIELDS)
            for event in iterate(qs):
                row = _row(event)
                row["params"] = json.dumps(row["params"], sort_keys=True, ensure_ascii=False)
                yield writer.writerow([row[f] for f in EXPORT_FIELDS])

        content_type = "text/csv; charset=utf-8"
    else:

        def rows():
            yield "[\n"
            first = True
            for event in iterate(qs):
                yield ("" if first else ",\n") + json.dumps(_row(event), ensure_ascii=False, default=str)
                first = False
            yield "\n]\n"

        content_type = "application/json"
    response = StreamingHttpResponse(rows(), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{fmt}"'
    return response


@console_view
def export_bundle(request):
    """The filtered events as a signed zip bundle, verifiable offline (opsconsole_audit_verify)."""
    require_perm(request, "audit.export_audit_log")
    form = AuditFilterForm(request.GET or None)
    qs = filtered(form) if form.is_bound else AuditEvent.objects.all()
    filters = form.params() if form.is_bound else {}
    _audit_access(request, "audit.export", {**filters, "format": "bundle"})
    response = StreamingHttpResponse(bundle.stream(qs, filters), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="audit-{timezone.now().strftime("%Y%m%dT%H%M%SZ")}.zip"'
    return response


@console_view
def public_key(request):
    """The public key that verifies anchors and export bundles, for auditors to keep."""
    require_perm(request, "audit.view_audit_log")
    response = HttpResponse(keys.public_pem(), content_type="application/x-pem-file")
    response["Content-Disposition"] = 'attachment; filename="opsconsole-audit.pub.pem"'
    return response
