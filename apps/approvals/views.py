from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.core import hooks
from apps.core.errors import OpsError
from apps.core.forms import cleaned_params, form_class_for
from apps.core.middleware import client_ip
from apps.core.web import actor_of, call, call_from_form, console_view, done_or_pending, require_perm

from . import breakglass, plans, services
from .models import ApprovalPolicy, ApprovalRequest
from .policies import POLICY_FIELDS, SavePolicyInput


@console_view
def queue(request):
    require_perm(request, "core.run_read_ops")
    status = request.GET.get("status", "open")
    qs = ApprovalRequest.objects.select_related("requested_by").prefetch_related("votes")
    if request.GET.get("mine") == "1":
        qs = qs.filter(requested_by=request.user)
    if status == "open":  # waiting for a decision, or a break-glass run waiting for its review
        qs = qs.filter(status__in=ApprovalRequest.OPEN)
    elif status in dict(ApprovalRequest.STATUSES):
        qs = qs.filter(status=status)
    counts = dict(ApprovalRequest.objects.values_list("status").annotate(n=Count("id")))
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    tabs = [("open", sum(counts.get(s, 0) for s in ApprovalRequest.OPEN))] + [(s, counts.get(s, 0)) for s, _ in ApprovalRequest.STATUSES]
    return render(request, "approvals/queue.html", {"page": page, "status": status, "tabs": tabs})


@console_view
def detail(request, pk: int):
    require_perm(request, "core.run_read_ops")
    approval = get_object_or_404(ApprovalRequest.objects.select_related("requested_by"), pk=pk)
    services.expire_if_due(approval)
    actor = actor_of(request)
    voted = approval.votes.filter(voter=request.user).exists()
    can_vote = (
        approval.status == ApprovalRequest.PENDING
        and actor.has_perm("approvals.approve_requests")
        and approval.requested_by_id != request.user.pk
        and not voted
    )
    can_acknowledge = (
        approval.status == ApprovalRequest.REVIEW
        and (actor.has_perm("approvals.approve_requests") or actor.has_perm("approvals.break_glass"))
        and approval.requested_by_id != request.user.pk
        and not voted
    )
    context = {
        "approval": approval,
        "summary": approval.plan.get("summary", ""),
        "changes": plans.changes(approval.plan),
        "details": plans.details(approval.plan),
        "links": {**(approval.plan.get("links") or {}), **hooks.approval_links(approval)},
        "drift": plans.drift(approval.plan, approval.drifted_plan) if approval.drifted_plan is not None else [],
        "params_json": json.dumps(approval.params_redacted, indent=2, sort_keys=True),
        "votes": approval.votes.select_related("voter"),
        "can_vote": can_vote,
        "can_acknowledge": can_acknowledge,
        "job": approval.job,
    }
    return render(request, "approvals/detail.html", context)


@console_view
@require_POST
def vote(request, pk: int):
    decision = request.POST.get("decision", "")
    try:
        services.vote(
            pk, actor_of(request), decision, request.POST.get("comment", ""), plan_hash=request.POST.get("plan_hash", ""),
            client_ip=client_ip(request), request_id=getattr(request, "request_id", ""),
        )  # fmt: skip
    except OpsError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Your {decision} vote on request #{pk} is recorded.")
    return redirect("approvals:detail", pk=pk)


@console_view
@require_POST
def acknowledge(request, pk: int):
    try:
        breakglass.acknowledge(
            pk,
            actor_of(request),
            request.POST.get("comment", ""),
            client_ip=client_ip(request),
            request_id=getattr(request, "request_id", ""),
        )
    except OpsError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Your acknowledgement of break-glass run #{pk} is recorded.")
    return redirect("approvals:detail", pk=pk)


def _policy_form(data=None, instance: ApprovalPolicy | None = None):
    form_class = form_class_for(SavePolicyInput)
    form = form_class(data, initial={f: getattr(instance, f) for f in POLICY_FIELDS} if instance else None)
    del form.fields["id"]  # the URL says which policy
    return form


@console_view
def policies(request, pk: int | None = None):
    require_perm(request, "approvals.manage_policies")
    instance = get_object_or_404(ApprovalPolicy, pk=pk) if pk else None
    form, status = _policy_form(request.POST or None, instance), 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            outcome, status = call_from_form(request, form, "approvals.save_policy", {**cleaned_params(form), "id": pk})
            if outcome:
                return done_or_pending(request, outcome, "Saved the policy.", "approvals:policies")
    context = {
        "form": form,
        "policies": ApprovalPolicy.objects.order_by("operation", "scope"),
        "edited": instance,
        "default_expiry": settings.APPROVAL_DEFAULT_EXPIRY_HOURS,
    }
    return render(request, "approvals/policies.html", context, status=status)


@console_view
@require_POST
def policy_delete(request, pk: int):
    require_perm(request, "approvals.manage_policies")
    try:
        outcome = call(request, "approvals.delete_policy", {"id": pk})
    except OpsError as exc:
        messages.error(request, exc.message)
        return redirect("approvals:policies")
    return done_or_pending(request, outcome, "Deleted the policy.", "approvals:policies")
