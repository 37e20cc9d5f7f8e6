from __future__ import annotations

import csv
import json
from datetime import datetime, time

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.core.errors import OpsError
from apps.core.models import Job
from apps.core.web import actor_of, call, call_from_form, console_view, require_perm

from . import uploads
from .forms import OPERATION_OF, NewScanForm, RootForm, TriageForm
from .models import SEVERITIES, Finding, Scan, ScanRoot
from .queries import STATUS_VALUES, FindingFilter, summary
from .services import SCAN_OPERATIONS

PAGE = 25


def _filter_from(request) -> FindingFilter:
    g = request.GET
    status = [s for s in g.getlist("status") if s in STATUS_VALUES] or ["open", "triaged"]
    if g.get("status") == "all":
        status = STATUS_VALUES
    return FindingFilter(
        status=status,
        severity=[s for s in g.getlist("severity") if s],
        kind=g.get("kind", ""),
        target=g.get("target", "")[:300],
        rule=g.get("rule", "")[:100],
        assignee=g.get("assignee", "")[:150],
        search=g.get("q", "")[:200],
        include_examples=g.get("examples", "1") != "0",
    )


@console_view
def dashboard(request):
    require_perm(request, "core.run_read_ops")
    recent = Job.objects.filter(operation__in=SCAN_OPERATIONS).select_related("security_scan", "requested_by")[:8]
    feeds = call(request, "security.advisory_status", {}).result.feeds
    return render(request, "security/dashboard.html", {**summary(), "recent": recent, "feeds": feeds})


@console_view
def scans(request):
    require_perm(request, "core.run_read_ops")
    jobs = Job.objects.filter(operation__in=SCAN_OPERATIONS).select_related("security_scan", "requested_by")
    return render(request, "security/scans.html", {"page": Paginator(jobs, PAGE).get_page(request.GET.get("page"))})


@console_view
def new_scan(request):
    require_perm(request, "core.run_write_ops")
    form = NewScanForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            staged = None  # the file's bytes on disk, no row: the scan operation claims it inside the gateway
            try:
                staged = uploads.stage(form.cleaned_data["file"], actor_of(request)) if form.needs_upload else None
                outcome = call(request, OPERATION_OF[form.cleaned_data["kind"]], form.params(staged.as_input() if staged else None))
            except OpsError as exc:
                if staged is not None:  # refused: what it staged is of no use (a claimed file is gone already)
                    uploads.discard(actor_of(request), staged)
                form.add_error(None, exc.message)
                status = exc.status_code
            else:
                messages.success(request, "Scan started.")
                return redirect("security:scan", pk=outcome.job.pk)
        else:
            status = 422
    return render(request, "security/new_scan.html", {"form": form, "roots": ScanRoot.objects.exists()}, status=status)


def _scan_state(request, pk) -> dict:
    require_perm(request, "core.run_read_ops")
    job = Job.objects.filter(pk=pk).select_related("requested_by").first()
    scan = Scan.objects.filter(pk=pk).first()
    if job is None and scan is None:
        raise Http404("There is no such scan.")
    finished = job.finished if job else scan.status != Scan.RUNNING
    return {"pk": pk, "job": job, "scan": scan, "finished": finished}


@console_view
def scan_detail(request, pk):
    state = _scan_state(request, pk)
    scan = state["scan"]
    found = Paginator(Finding.objects.filter(last_scan=scan).select_related("assignee") if scan else Finding.objects.none(), PAGE)
    return render(request, "security/scan.html", {**state, "page": found.get_page(request.GET.get("page"))})


@console_view
def scan_state(request, pk):
    return render(request, "security/_scan_state.html", _scan_state(request, pk))


@console_view
def findings(request):
    require_perm(request, "core.run_read_ops")
    flt = _filter_from(request)
    page_number = max(1, int(request.GET.get("page", "1")) if request.GET.get("page", "1").isdigit() else 1)
    result = call(request, "security.findings", {**flt.model_dump(), "offset": (page_number - 1) * PAGE, "limit": PAGE}).result
    paginator = Paginator(range(result.total), PAGE)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "result": result,
        "page": paginator.get_page(page_number),
        "filter": flt,
        "query": query.urlencode(),
        "statuses": STATUS_VALUES,
        "severities": SEVERITIES,
    }
    return render(request, "security/findings.html", context)


@console_view
def finding_detail(request, pk):
    require_perm(request, "core.run_read_ops")
    finding = get_object_or_404(Finding.objects.select_related("assignee", "first_scan", "last_scan"), pk=pk)
    form = TriageForm(initial={"assignee": finding.assignee.username if finding.assignee else ""})
    comments = finding.comments.select_related("author")
    can_triage = actor_of(request).has_perm("security.triage_findings")
    return render(request, "security/finding.html", {"finding": finding, "form": form, "comments": comments, "can_triage": can_triage})


@console_view
@require_POST
def triage(request, pk):
    finding = get_object_or_404(Finding, pk=pk)
    form = TriageForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The triage form was not valid.")
        return redirect(finding)
    data = form.cleaned_data
    assignee = "" if data["unassign"] else (data["assignee"] or None)
    if assignee is not None and finding.assignee and assignee == finding.assignee.username:
        assignee = None
    until = timezone.make_aware(datetime.combine(data["accepted_until"], time(23, 59))) if data["accepted_until"] else None
    params = {
        "finding_id": finding.pk,
        "status": data["status"] or None,
        "assignee": assignee,
        "accepted_until": until,
        "comment": data["comment"],
    }
    try:
        outcome = call(request, "security.triage_finding", params)
    except OpsError as exc:
        messages.error(request, exc.message)
    else:
        if outcome.status == "pending":
            messages.info(request, f"Dismissing a critical finding needs approval: request #{outcome.approval.pk} waits for an approver.")
            return redirect(outcome.approval)
        messages.success(request, "Finding updated.")
    return redirect(finding)


@console_view
def export_sarif(request):
    outcome = call(request, "security.export_sarif", _filter_from(request).model_dump())
    response = HttpResponse(json.dumps(outcome.result.sarif, indent=2), content_type="application/sarif+json")
    response["Content-Disposition"] = 'attachment; filename="findings.sarif"'
    return response


class _Echo:
    def write(self, value):
        return value


CSV_COLUMNS = [
    "id",
    "severity",
    "status",
    "kind",
    "rule",
    "title",
    "target",
    "location",
    "preview",
    "owasp",
    "cwe",
    "package",
    "version",
    "fixed_in",
    "aliases",
    "assignee",
    "first_seen",
    "last_seen",
]


@console_view
def export_csv(request):
    """Streamed page by page through security.findings (each page is an audited read)."""
    flt = _filter_from(request).model_dump()
    first = call(request, "security.findings", {**flt, "offset": 0, "limit": 1000}).result
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(CSV_COLUMNS)
        result, offset = first, 0
        while True:
            for f in result.findings:
                row = f.model_dump(mode="json")
                row["aliases"] = " ".join(row["aliases"])
                yield writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])
            offset += 1000
            if offset >= result.total:
                return
            result = call(request, "security.findings", {**flt, "offset": offset, "limit": 1000}).result

    response = StreamingHttpResponse(rows(), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="findings.csv"'
    return response


def _cell(value):
    """Spreadsheet formula injection: a cell starting with = + - @ is text, not a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@console_view
def roots(request):
    require_perm(request, "security.manage_scan_roots")
    form = RootForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        outcome, _ = call_from_form(request, form, "security.set_scan_root", form.cleaned_data)
        if outcome:
            messages.success(request, f"Scan root {form.cleaned_data['name']} saved.")
            return redirect("security:roots")
    return render(request, "security/roots.html", {"form": form, "roots": ScanRoot.objects.all()})


@console_view
@require_POST
def remove_root(request, name):
    call(request, "security.remove_scan_root", {"name": name})
    messages.success(request, f"Scan root {name} removed.")
    return redirect("security:roots")
