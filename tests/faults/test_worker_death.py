"""kill -9 a real Celery worker mid-job: the job is found lost and ends (failed, with
where it stopped), Cancel ends it, a restarted worker reaps what its predecessor
left; the job's audit events are all there and the chain verifies."""

import os
import signal
import time

import pytest

from apps.audit.models import AuditEvent
from apps.audit.verify import verify_chain
from apps.core.gateway import invoke
from apps.core.models import Job
from tests.support.waiting import wait_for

from .conftest import kill_holder

LONG_JOB = {"steps": 60, "step_seconds": 0.5, "message": "tick"}


@pytest.fixture
def operator(make_user, actor_of):
    return actor_of(make_user("operator"))


def running_job(operator, at_least: int = 10) -> Job:
    job = invoke("core.echo_job", operator, LONG_JOB).job
    wait_for(lambda: Job.objects.filter(pk=job.pk, status="running", progress__gte=at_least).exists(), what=f"the job past {at_least} %")
    return Job.objects.get(pk=job.pk)


def finished(job: Job) -> Job | None:
    job.refresh_from_db()
    return job if job.finished else None


def audit_trail(job: Job) -> list[tuple[str, str]]:
    events = AuditEvent.objects.filter(request_id=job.request_id).order_by("seq")
    return [(event.channel, event.outcome) for event in events]


def test_a_job_whose_pool_process_is_killed_ends_failed_saying_where(operator, lone_worker):
    worker = lone_worker()
    job = running_job(operator)
    kill_holder(job, worker)
    killed_at = time.monotonic()
    # Celery gives the task back (reject on worker lost); its redelivery finds the lease's holder dead.
    job = wait_for(lambda: finished(job), what="the lost job to end")
    detected = time.monotonic() - killed_at
    print(f"\nkill -9 of the pool process: job {job.status} {detected:.1f} s later")  # the figure in docs/jobs.md
    assert job.status == "failed" and job.error.startswith(f"worker lost at {job.progress} %: no heartbeat since ")
    assert job.progress >= 10 and job.attempts == 1, "not run a second time"
    steps_logged = job.log_lines.filter(text__startswith="step ").count()
    assert steps_logged < LONG_JOB["steps"]
    assert audit_trail(job) == [("web", "ok"), ("worker", "failed")]
    assert verify_chain().ok

    # The worker lives on (a new pool process) and runs the next job to the end.
    after = invoke("core.echo_job", operator, {"steps": 2, "message": "after"}).job
    assert wait_for(lambda: finished(after), what="the next job").status == "succeeded"


def test_cancel_ends_a_job_whose_worker_was_killed_and_a_restarted_worker_reaps_the_rest(operator, lone_worker, client_as):
    worker = lone_worker(concurrency=2)
    to_cancel, to_reap = running_job(operator), running_job(operator, at_least=2)
    os.killpg(worker.proc.pid, signal.SIGKILL)  # the whole worker: nothing is given back to the broker
    worker.proc.wait()

    client = client_as("operator")
    assert client.post(f"/jobs/{to_cancel.pk}/cancel/").status_code == 302
    to_cancel.refresh_from_db()
    assert to_cancel.status == "cancelled" and "worker lost at" in to_cancel.error, "Cancel ends it at once"
    assert Job.objects.get(pk=to_reap.pk).status == "running"

    lone_worker()  # a restart: the new worker reaps as it starts
    to_reap = wait_for(lambda: finished(to_reap), what="the restarted worker to reap the job")
    assert to_reap.status == "failed" and to_reap.error.startswith("worker lost at")
    for job in (to_cancel, to_reap):
        assert audit_trail(job) == [("web", "ok"), ("worker", "failed")]
    assert verify_chain().ok
