"""A deploy whose job ends before its rollout starts — cancelled while queued, refused at its start checks —
does not leave its deployment "queued" forever: it is aborted, saying why, and nothing ran on the engine."""

import pytest

from apps.core.gateway import invoke, run_job
from apps.core.models import Job
from apps.infrastructure.models import Deployment

from .conftest import labelled, web_service

pytestmark = pytest.mark.peer


def queue_deploy(actor, environment) -> Deployment:
    outcome = invoke("infrastructure.deploy", actor, {"environment": environment.name, "service": "web"})
    assert outcome.status == "queued"  # handed to Celery only on commit: this test's transaction never commits
    deployment = Deployment.objects.get(job=outcome.job)
    assert deployment.status == Deployment.QUEUED
    return deployment


def test_a_deploy_cancelled_while_queued_is_aborted_and_nothing_runs(operator, environment, images, podman):
    web_service(operator, environment, images, replicas=1)
    deployment = queue_deploy(operator, environment)
    invoke("core.cancel_job", operator, {"job_id": str(deployment.job_id)})
    deployment.refresh_from_db()
    assert deployment.status == Deployment.ABORTED and deployment.finished_at is not None
    assert deployment.reason == "job cancelled before it started: cancelled before it started"
    assert deployment.log_lines.filter(text__startswith="not deployed: job cancelled").exists()
    run_job(str(deployment.job_id))  # a late delivery of the task changes nothing
    assert Job.objects.get(pk=deployment.job_id).status == Job.CANCELLED
    assert labelled(podman, environment) == []


def test_a_deploy_refused_at_its_start_is_aborted_saying_why(operator, environment, images, podman):
    web_service(operator, environment, images, replicas=1)
    deployment = queue_deploy(operator, environment)
    operator.user.groups.clear()  # the requester lost the role before a worker took the job
    run_job(str(deployment.job_id))
    deployment.refresh_from_db()
    assert Job.objects.get(pk=deployment.job_id).status == Job.FAILED
    assert deployment.status == Deployment.ABORTED
    assert deployment.reason.startswith("job failed before it started: ") and "permission" in deployment.reason.lower()
    assert labelled(podman, environment) == []


def test_a_job_that_passed_its_start_checks_leaves_its_deployment_to_the_rollout(operator, environment, images, podman):
    """Once admitted, the rollout (or a promote queuing the deployment again) owns the deployment's status."""
    web_service(operator, environment, images, replicas=1)
    deployment = queue_deploy(operator, environment)
    Job.objects.filter(pk=deployment.job_id).update(admitted=True)  # e.g. a resumable deploy waiting to resume
    invoke("core.cancel_job", operator, {"job_id": str(deployment.job_id)})
    deployment.refresh_from_db()
    assert Job.objects.get(pk=deployment.job_id).status == Job.CANCELLED and deployment.status == Deployment.QUEUED
