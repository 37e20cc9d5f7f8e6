from __future__ import annotations

import json
from itertools import groupby

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_POST

from . import operations
from .errors import PeerUnavailable, UnknownOperation
from .forms import cleaned_params, form_class_for
from .health import probe
from .models import Job, Notification
from .services import JobFinished, health_report
from .web import actor_of, call, call_from_form, console_view, require_perm


def healthz(request):
    """Liveness for load balancers, within HEALTH_PROBE_SECONDS: 200 while the database answers
    ("degraded" when Redis does not: every web process shares it, so none is better to route to)."""
    found = probe(include_workers=False)
    database, broker = found["database"], found["broker"]
    status = "down" if database != "ok" else "ok" if broker == "ok" else "degraded"
    return JsonResponse({"status": status, "database": database, "redis": broker}, status=503 if status == "down" else 200)


@console_view
def operation_list(request):
    actor = actor_of(request)
    allowed = [op for op in operations.all_operations() if op.exposed and actor.has_perm(op.permission)]
    groups = [(app, list(ops)) for app, ops in groupby(allowed, key=lambda op: op.app)]
    return render(request, "core/operations.html", {"groups": groups})


@console_view
def operation_form(request, name: str):
    op = operations.get(name)
    if not op.exposed:
        raise UnknownOperation(f"{name} has no form of its own.")
    actor = actor_of(request)
    from .gateway import check_permission

    check_permission(op, actor)
    form_class = form_class_for(op.input)
    result, status = None, 200
    if request.method == "POST":
        form = form_class(request.POST)
        if not form.is_valid():
            status = 422
        else:
            outcome, status = call_from_form(
                request, form, op.name, cleaned_params(form), reason=request.POST.get("approval_reason", ""),
                break_glass=request.POST.get("break_glass") == "1",
            )  # fmt: skip
            if outcome and outcome.status == "queued":
                messages.success(request, f"{op.title}: job started.")
                return redirect(outcome.job)
            if outcome and outcome.status == "pending":
                messages.info(request, f"{op.title} needs approval: request #{outcome.approval.pk} is waiting for an approver.")
                return redirect(outcome.approval)
            if outcome:
                result = json.dumps(outcome.result.model_dump(mode="json"), indent=2)
    else:
        form = form_class(initial=request.GET.dict() or None)
    return render(
        request,
        "core/operation_form.html",
        {"op": op, "form": form, "result": result, "reason": request.POST.get("approval_reason", "")},
        status=status,
    )


@console_view
def job_list(request):
    require_perm(request, "core.run_read_ops")
    qs = Job.objects.select_related("requested_by")
    status = request.GET.get("status")
    if status in dict(Job.STATUSES):
        qs = qs.filter(status=status)
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    context = {"page": page, "status": status, "statuses": [s for s, _ in Job.STATUSES], "query": f"status={status}" if status else ""}
    return render(request, "core/jobs.html", context)


@console_view
def job_detail(request, pk):
    require_perm(request, "core.run_read_ops")
    job = get_object_or_404(Job.objects.select_related("requested_by"), pk=pk)
    lines = list(job.log_lines.all()[:2000])
    # Only offered to whom core.cancel_job would let do it (the operation decides; this hides a button that would 403).
    can_cancel = actor_of(request).has_perm(operations.get("core.cancel_job").permission)
    return render(request, "core/job.html", {"job": job, "lines": lines, "can_cancel": can_cancel})


@console_view
@require_POST
def job_cancel(request, pk):
    job = get_object_or_404(Job, pk=pk)
    try:
        cancelled = call(request, "core.cancel_job", {"job_id": job.pk}).result
    except JobFinished as exc:
        messages.info(request, exc.message)
    else:
        stopping = "Cancellation requested: it stops at its next progress report."
        messages.success(request, "Cancelled." if cancelled.status == Job.CANCELLED else stopping)
    return redirect(job)


def health_page(request):
    """The bounded probes run first, before anything needs the database. When it does not
    answer, the session, the user and the gateway cannot be had either: the page answers
    at once with the probes' states (what /healthz tells anyone) instead of waiting on it."""
    found = probe(include_workers=False)
    if found["database"] != "ok":
        # Rendered without the request: the context processors would look up the user.
        page = render_to_string("core/health_unavailable.html", {"found": found})
        return HttpResponse(page, status=503)
    return _health_report_page(request, found)


@console_view
def _health_report_page(request, found: dict):
    """The gateway needs Redis (rate limits) before it runs anything: when Redis does not
    answer, the report comes straight from the bounded probes instead of waiting on it."""
    require_perm(request, operations.get("core.health").permission)
    if found["broker"] == "ok":
        try:
            return render(request, "core/health.html", {"health": call(request, "core.health", {"include_workers": True}).result})
        except PeerUnavailable as exc:  # Redis stopped answering in between
            messages.warning(request, exc.message)
    else:
        messages.warning(request, "The console's Redis does not answer: operations are refused until it is back. Report made without it:")
    return render(request, "core/health.html", {"health": health_report(include_workers=False, found=found)})


@console_view
def notifications(request):
    notes = Paginator(Notification.objects.filter(user=request.user), 25).get_page(request.GET.get("page"))
    return render(request, "core/notifications.html", {"page": notes})


@console_view
@require_POST
def notifications_read(request):
    Notification.objects.filter(user=request.user, read_at__isnull=True).update(read_at=timezone.now())
    if request.htmx:
        return HttpResponse("")
    return redirect("core:notifications")


@console_view
def search(request):
    """The search box: `core.search` through the gateway, hits grouped by kind."""
    q = request.GET.get("q", "").strip()
    hits = call(request, "core.search", {"q": q}).result.hits if q else []
    groups = [(kind, list(found)) for kind, found in groupby(hits, key=lambda h: h.kind)]
    return render(request, "core/search.html", {"q": q, "groups": groups})
