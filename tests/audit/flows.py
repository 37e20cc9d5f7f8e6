"""An approval flow through the real entry points, for the flow and auditor-page tests."""

from apps.approvals import services as approvals
from apps.core.gateway import invoke, run_job
from apps.core.models import Job
from tests.support.waiting import wait_for


def approval_flow(make_user, actor_of):
    """An admin asks to disable a sink; one approver comments and approves; the job runs.
    -> the approval request. Needs loopback allow-listed (AUDIT_SINK_OUTBOUND_ALLOW)."""
    admin = actor_of(make_user("admin"))
    invoke("audit.save_sink", admin, {"name": "siem", "kind": "syslog", "address": "127.0.0.1:6514"})
    pending = invoke("audit.disable_sink", admin, {"name": "siem"}, reason="SIEM migration; old password=hunter2 is void")
    approval = approvals.vote(pending.approval.pk, actor_of(make_user("approver")), "approve", "ok, token: abc123 rotated")
    job = approval.job
    run_job(str(job.pk))  # a worker of another test may have taken it first: either way it ends
    wait_for(lambda: Job.objects.get(pk=job.pk).status == Job.SUCCEEDED, what="the approved job")
    return approval
