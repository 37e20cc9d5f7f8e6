"""What runs is what was approved, at most once: the check every approved job passes as it starts.

Registered as core's job-queued and job-start hooks (apps.approvals.apps): core knows no app above it.
"""

from __future__ import annotations

from django.utils import timezone

from apps.audit.writer import record
from apps.core.errors import OpsError
from apps.core.notify import notify

from . import plans
from .hooks import request_not_run
from .models import ApprovalRequest, ApprovalRun

DRIFT_LINES_IN_NOTE = 4


class NotRunnable(OpsError):
    """The approved job may not run: its approval already ran, or what it would do is not what was approved."""

    outcome = "denied"


def record_run(job) -> None:
    """Core's job-queued hook: a job queued under a request is one of its runs (core keeps only the request's number)."""
    if job.approval_id:
        ApprovalRun.objects.create(request_id=job.approval_id, job=job)


def check_job_start(ctx, params) -> None:
    """Claim the job's approval (one atomic update: a second job or a redelivery finds it taken), then
    recompute the plan: a different hash ends the request `drifted` and nothing runs."""
    job = ctx.job
    if job is None or not job.approval_id:
        return
    # A break-glass job runs whether or not its review was acknowledged before a worker took it (review/reviewed).
    runnable = (ApprovalRequest.APPROVED, ApprovalRequest.REVIEW, ApprovalRequest.REVIEWED)
    claimed = ApprovalRequest.objects.filter(pk=job.approval_id, executed_at__isnull=True, status__in=runnable).update(
        executed_at=timezone.now()
    )
    approval = ApprovalRequest.objects.select_related("requested_by").get(pk=job.approval_id)
    if not claimed:
        ran = f"already ran at {approval.executed_at:%Y-%m-%d %H:%M:%S} UTC" if approval.executed_at else f"is {approval.status}"
        raise NotRunnable(f"Approval request #{approval.pk} {ran}: an approval runs at most once.")
    try:
        current = plans.compute(ctx.operation, ctx, params)
    except OpsError as exc:  # what was approved can no longer be planned (e.g. the runbook was disabled)
        current = {"not plannable": exc.message}
    if plans.plan_hash(current) != approval.plan_hash:
        _drifted(approval, current, ctx.actor)


def _drifted(approval: ApprovalRequest, current: dict, actor) -> None:
    current_hash = plans.plan_hash(current)
    approval.status, approval.drifted_plan = ApprovalRequest.DRIFTED, current
    approval.save(update_fields=["status", "drifted_plan"])
    request_not_run(approval)
    changed = [f"{sign} {line}" for sign, line in plans.drift(approval.plan, current)]
    record(
        operation="approvals.drifted", outcome="denied", channel="worker", actor=actor, target=approval.operation,
        params={"approved_plan_hash": approval.plan_hash, "current_plan_hash": current_hash, "changed": changed[:50]},
        error="What would run is not what was approved: nothing ran.", approval_id=str(approval.pk),
    )  # fmt: skip
    shown = "; ".join(changed[:DRIFT_LINES_IN_NOTE]) + (" …" if len(changed) > DRIFT_LINES_IN_NOTE else "")
    notify(
        approval.requested_by,
        f"Request #{approval.pk} ({approval.operation}) did not run: its plan changed since approval ({shown}).",
        approval.get_absolute_url(),
    )
    from .services import publish

    publish(approval)
    raise NotRunnable(
        f"Approval request #{approval.pk} drifted: what would run now differs from the approved plan "
        f"({approval.plan_hash[:12]} approved, {current_hash[:12]} now). Nothing ran; request it again."
    )
