"""The home page: what the console's health, approvals, jobs and audit log say right now, as the role may see it."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import render
from django.urls import reverse

from apps.approvals.models import ApprovalRequest
from apps.audit.models import AuditEvent
from apps.core.errors import OpsError
from apps.core.models import Job
from apps.core.web import actor_of, call, console_view


@console_view
def home(request):
    actor = actor_of(request)
    health = None
    if actor.has_perm("core.run_read_ops"):
        try:
            health = call(request, "core.health", {"include_workers": False}).result
        except OpsError as exc:
            messages.warning(request, exc.message)
    link_base = ""
    if actor.has_perm("audit.view_audit_log"):
        recent, link_base = AuditEvent.objects.all()[:10], reverse("audit:browse")
    else:
        recent = AuditEvent.objects.filter(actor_id=request.user.pk)[:10]
    can_run = actor.has_perm("core.run_read_ops")
    context = {"health": health, "recent": recent, "link_base": link_base, "can_run": can_run}
    if can_run:  # the approvals and jobs panels link to pages that need it
        context |= {
            "pending": ApprovalRequest.objects.filter(status="pending").select_related("requested_by")[:5],
            "pending_count": ApprovalRequest.objects.filter(status="pending").count(),
            "my_pending": ApprovalRequest.objects.filter(status="pending", requested_by=request.user).count(),
            "running": Job.objects.filter(status__in=[Job.QUEUED, Job.RUNNING]).select_related("requested_by")[:10],
        }
    return render(request, "console/home.html", context)
