"""kill -9 the worker's pool process in the middle of an approved canary deploy
(podman): the deploy is resumable, so it resumes from its recorded step on a new
pool process — the approval is not claimed a second time, the service serves a
known revision throughout — and ends as asked; its audit events are all there and
the chain verifies."""

import pytest

from apps.approvals import services as approvals
from apps.approvals.models import ApprovalRequest
from apps.audit.models import AuditEvent
from apps.audit.verify import verify_chain
from apps.core.gateway import invoke
from apps.core.models import Job
from apps.infrastructure.models import Deployment
from tests.infrastructure.conftest import endpoint, versions, web_service
from tests.support.waiting import wait_for

from .conftest import kill_holder

STEPS = [{"set_weight": 50}, {"pause": {"seconds": 3600}}, {"set_weight": 100}]


@pytest.fixture
def operator(make_user, actor_of):
    return actor_of(make_user("operator"))


def deployed(job: Job) -> Deployment | None:
    deployment = Deployment.objects.get(job=job)
    return deployment if deployment.finished else None


def test_an_approved_deploy_whose_worker_is_killed_resumes_from_its_step(operator, environment, images, lone_worker, make_user, actor_of):
    worker = lone_worker()
    web_service(operator, environment, images, replicas=2, strategy="canary", options={"steps": STEPS})
    first = invoke("infrastructure.deploy", operator, {"environment": environment.name, "service": "web"}).job
    assert wait_for(lambda: deployed(first), what="the first deploy").status == "succeeded"
    address = endpoint(operator, environment)
    admin = actor_of(make_user("admin"))
    protect = {"name": environment.name, "engine_url": environment.engine_url, "router_image": environment.router_image, "protected": True}
    invoke("infrastructure.save_environment", admin, {**protect, "quorum": 1})

    request = invoke("infrastructure.deploy", operator, {"environment": environment.name, "service": "web", "image": images.web["v2"]})
    assert request.status == "pending"
    approvals.vote(request.approval.pk, actor_of(make_user("approver")), "approve")
    job = Job.objects.get(approval_id=request.approval.pk)
    canary = Deployment.objects.get(job=job)
    pause_reached = canary.log_lines.filter(text="step 2/3: pause 3600 s")
    wait_for(lambda: pause_reached.count() == 1, what="the canary's pause")
    kill_holder(job, worker)

    wait_for(lambda: pause_reached.count() == 2, what="the resumed deploy to reach its pause again")
    assert set(versions(address, 10)) == {"v1", "v2"}, "the canary weight held while no worker ran the deploy"
    log = list(canary.log_lines.values_list("text", flat=True))
    assert any(line.startswith("resuming canary deployment of r2") for line in log), log
    assert log.count("step 1/3: set weight 50%") == 1, "the finished step did not run again"

    invoke("infrastructure.promote", operator, {"deployment": canary.pk})
    canary = wait_for(lambda: deployed(job), what="the promoted deploy")
    assert canary.status == "succeeded", canary.reason
    assert versions(address, 10) == {"v2": 10}
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("succeeded", 2)
    approval = ApprovalRequest.objects.get(pk=request.approval.pk)
    assert approval.status == "approved" and approval.executed_at is not None, "claimed once, by the first start"
    assert job.log_lines.filter(text__contains="resuming (attempt 2)").exists()
    events = AuditEvent.objects.filter(approval_id=str(approval.pk)).order_by("seq")
    assert [(e.operation, e.channel, e.outcome) for e in events] == [
        ("infrastructure.deploy", "web", "pending"),
        ("approvals.approve", "web", "ok"),
        ("infrastructure.deploy", "worker", "ok"),
    ]
    assert verify_chain().ok
