"""Another person approves a pending request; the approved job runs on the worker's code path, here."""

from __future__ import annotations

from apps.approvals import services
from apps.core.gateway import run_job
from apps.core.models import Job


def approve_and_run(approval, approver) -> Job:
    services.vote(approval.pk, approver, "approve")
    job = Job.objects.get(approval_id=approval.pk)
    run_job(str(job.pk))
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    return job
