"""Job leases, in one process with an injected clock: a running job whose worker is
gone is found by the reaper once its lease is over (or at once when its holder died
on this machine) and is resumed or failed — never left running; Cancel always ends
a job; a redelivered task never runs a job a second time."""

import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.audit.verify import verify_chain
from apps.core import jobs, leases
from apps.core.gateway import invoke, reap_jobs, run_job
from apps.core.models import Job

T = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
LEASE = timedelta(seconds=settings.JOB_LEASE_SECONDS)
ELSEWHERE = "another-host/pid:[1]:4242"  # a worker on another machine: only its lease tells whether it lives


@pytest.fixture
def operator(make_user, actor_of):
    return actor_of(make_user("operator"))


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def running(operator, *, operation="core.echo_job", params=None, worker=ELSEWHERE, heartbeat=T, progress=40, attempts=1) -> Job:
    """A job a worker claimed and then went silent: queued through the gateway, then in the state a worker leaves."""
    outcome = invoke("core.echo_job", operator, params or {"steps": 5, "message": "tick"})
    Job.objects.filter(pk=outcome.job.pk).update(operation=operation, status=Job.RUNNING, worker=worker, heartbeat_at=heartbeat,
                                                 started_at=T - timedelta(minutes=1), progress=progress, attempts=attempts)  # fmt: skip
    return Job.objects.get(pk=outcome.job.pk)


def test_a_job_runs_holding_a_lease_of_this_process(operator):
    job = invoke("core.echo_job", operator, {"steps": 2, "message": "tick"}).job
    run_job(str(job.pk))
    job.refresh_from_db()
    assert job.status == "succeeded" and job.attempts == 1
    assert job.worker == leases.worker_id() and job.heartbeat_at is not None


def test_a_silent_job_is_failed_once_its_lease_is_over_with_where_it_stopped(operator):
    job = running(operator)
    assert reap_jobs(now=T + LEASE - timedelta(seconds=1)) == 0
    assert Job.objects.get(pk=job.pk).status == "running", "within the lease the worker may still live"

    assert reap_jobs(now=T + LEASE + timedelta(seconds=1)) == 1
    job.refresh_from_db()
    assert job.status == "failed" and job.finished_at is not None
    assert job.error == "worker lost at 40 %: no heartbeat since 12:00:00 UTC"
    events = AuditEvent.objects.filter(request_id=job.request_id).order_by("seq")
    assert [(e.channel, e.outcome) for e in events] == [("web", "ok"), ("worker", "failed")]
    assert events.last().error == job.error
    assert verify_chain().ok
    assert reap_jobs(now=T + 10 * LEASE) == 0, "an ended job is not reaped twice"


def test_a_job_whose_worker_died_on_this_machine_is_lost_at_once(operator):
    job = running(operator, worker=f"{leases._host()}:{dead_pid()}", heartbeat=T.replace(year=2999))
    assert reap_jobs() == 1
    job.refresh_from_db()
    assert job.status == "failed" and job.error.startswith("worker lost at 40 %")


def test_a_resumable_job_is_queued_again_until_its_attempts_run_out(operator):
    job = running(operator, operation="storage.backup_create")
    reap_jobs(now=T + LEASE + timedelta(seconds=1))
    job.refresh_from_db()
    assert job.status == "queued" and job.worker == "" and job.message.startswith("resuming: worker lost at 40 %")
    assert job.log_lines.last().text.endswith("resuming (attempt 2)")
    assert not AuditEvent.objects.filter(request_id=job.request_id, channel="worker").exists(), "not ended: no outcome yet"

    Job.objects.filter(pk=job.pk).update(status=Job.RUNNING, worker=ELSEWHERE, attempts=settings.JOB_MAX_ATTEMPTS)
    reap_jobs(now=T + LEASE + timedelta(seconds=1))
    job.refresh_from_db()
    assert job.status == "failed" and job.error.endswith(f"not resumed again after {settings.JOB_MAX_ATTEMPTS} attempts")


def test_a_redelivered_task_leaves_a_job_with_a_live_lease_alone(operator):
    job = running(operator, heartbeat=T.replace(year=2999))  # alive whatever the machine's speed
    run_job(str(job.pk))
    job.refresh_from_db()
    assert (job.status, job.attempts, job.log_lines.count()) == ("running", 1, 0)
    assert not AuditEvent.objects.filter(request_id=job.request_id, channel="worker").exists()


def test_a_redelivered_task_of_a_lost_job_fails_it_instead_of_running_it_again(operator):
    job = running(operator, worker=f"{leases._host()}:{dead_pid()}", heartbeat=T.replace(year=2999))
    run_job(str(job.pk))
    job.refresh_from_db()
    assert job.status == "failed" and job.attempts == 1 and job.log_lines.count() == 0, "echo_job is not resumable: not run again"


def test_cancel_ends_a_job_whose_worker_is_gone_at_once(operator):
    job = running(operator, worker=f"{leases._host()}:{dead_pid()}", heartbeat=T.replace(year=2999))
    assert invoke("core.cancel_job", operator, {"job_id": job.pk}).result.status == "cancelled"
    job.refresh_from_db()
    assert job.status == "cancelled" and "worker lost at 40 %" in job.error
    assert AuditEvent.objects.get(request_id=job.request_id, channel="worker").outcome == "failed"


def test_cancel_of_a_silent_job_within_its_lease_ends_it_when_the_lease_is_over(operator):
    job = running(operator, heartbeat=T.replace(year=2999))
    assert invoke("core.cancel_job", operator, {"job_id": job.pk}).result.status == "running"
    assert Job.objects.get(pk=job.pk).status == "running", "its worker may live: it stops at its next progress report"
    Job.objects.filter(pk=job.pk).update(heartbeat_at=T)
    reap_jobs(now=T + LEASE + timedelta(seconds=1))
    assert Job.objects.get(pk=job.pk).status == "cancelled"


def test_a_worker_that_lost_its_lease_stops_and_records_nothing(operator, monkeypatch):
    job = invoke("core.echo_job", operator, {"steps": 3, "message": "tick"}).job
    progress = jobs.Context.progress

    def declared_lost_first(ctx, percent, message=""):
        # The reaper declares the job lost while its worker still runs it (a pause longer than the lease).
        if ctx.job.progress == 0:
            Job.objects.filter(pk=ctx.job.pk).update(worker=ELSEWHERE, heartbeat_at=T)
            reap_jobs(now=T + LEASE + timedelta(seconds=1))
        progress(ctx, percent, message)

    monkeypatch.setattr(jobs.Context, "progress", declared_lost_first)
    run_job(str(job.pk))
    job.refresh_from_db()
    assert job.status == "failed" and job.error.startswith("worker lost at 0 %")
    assert job.log_lines.filter(text__startswith="step 2").count() == 0, "the worker stopped at its next report"
    assert AuditEvent.objects.filter(request_id=job.request_id, channel="worker").count() == 1, "ended and audited once"


@pytest.mark.django_db(transaction=True)
def test_the_worker_heartbeats_while_a_silent_operation_runs(operator):
    # A live lease (held by this process, fresh): the run's Celery worker, should it get the job's
    # task (the job is committed here), leaves such a job alone — as a redelivery would.
    started = timezone.now()
    job = running(operator, worker=leases.worker_id(), heartbeat=started)
    deadline = time.monotonic() + 60
    with leases.Heartbeat(job.pk, interval=0.05):  # the Celery task runs every job inside one
        while Job.objects.get(pk=job.pk).heartbeat_at == started and time.monotonic() < deadline:
            time.sleep(0.05)
    assert Job.objects.get(pk=job.pk).heartbeat_at > started
    assert not leases.is_lost(Job.objects.get(pk=job.pk))
