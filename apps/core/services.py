"""Core operations: the console's own health, and a demonstration job that
exercises the whole path (gateway -> worker -> live progress -> audit)."""

from __future__ import annotations

import time
import uuid

from pydantic import BaseModel, Field

from . import jobs
from .errors import InvalidInput, OpsError
from .health import app_checks, probe
from .jobs import Context
from .metrics import shared_breaker_states
from .operations import Risk, operation


class HealthInput(BaseModel):
    include_workers: bool = Field(True, description="Ping the Celery workers (adds up to half a second).")


class BreakerState(BaseModel):
    name: str
    state: str = Field(description="closed (healthy), open (failing fast) or half-open (trying again).")
    failures: int


class Check(BaseModel):
    name: str
    status: str = Field(description="ok or warning.")
    detail: str


class HealthOutput(BaseModel):
    status: str = Field(description="ok, degraded or down.")
    database: str
    broker: str
    queue_depth: int | None = Field(description="Jobs waiting in the Celery queue.")
    workers: list[str]
    breakers: list[BreakerState]
    checks: list[Check] = Field(default_factory=list, description="The apps' own checks, e.g. how old the advisory data is.")


@operation("core.health", risk=Risk.READ)
def health(ctx: Context, params: HealthInput) -> HealthOutput:
    """Health of the console itself: database, broker and queue depth, workers, and every connector's circuit breaker."""
    return health_report(params.include_workers)


def health_report(include_workers: bool, found: dict | None = None) -> HealthOutput:
    """The probes behind core.health, each bounded (apps.core.health.probe), or those already
    `found`; the health page shows this directly when the gateway cannot run (its Redis is down)."""
    found = found or probe(include_workers)
    breakers = [BreakerState(name=n, **s) for n, s in shared_breaker_states().items()]
    # The apps' checks read the database in this thread (the probes' threads see only committed rows).
    checks = [Check(name=name, status=level, detail=detail) for name, level, detail in app_checks()]
    if found["database"] != "ok" or found["broker"] != "ok":
        status = "down"
    elif (include_workers and not found["workers"]) or any(b.state != "closed" for b in breakers) or any(c.status != "ok" for c in checks):
        status = "degraded"
    else:
        status = "ok"
    return HealthOutput(status=status, breakers=breakers, checks=checks, **found)


class EchoJobInput(BaseModel):
    message: str = Field("hello", max_length=200, description="Text the job echoes in each step.")
    steps: int = Field(5, ge=1, le=100, description="How many steps to run.")
    step_seconds: float = Field(0.5, ge=0, le=10, description="Pause between steps.")
    fail_at_step: int | None = Field(None, ge=1, description="Fail deliberately at this step (to see failure handling).")


class EchoJobOutput(BaseModel):
    message: str
    steps_done: int


@operation("core.echo_job", risk=Risk.WRITE, long=True, target=lambda p: f"{p.steps} steps")
def echo_job(ctx: Context, params: EchoJobInput) -> EchoJobOutput:
    """Run a demonstration job on a worker that reports progress for N steps; useful to check workers and live updates."""
    from .errors import OperationFailed

    for step in range(1, params.steps + 1):
        if params.fail_at_step == step:
            raise OperationFailed(f"Failed at step {step}, as asked.")
        ctx.log(f"step {step}/{params.steps}: {params.message}")
        ctx.progress(100 * step / params.steps, f"step {step} of {params.steps}")
        if params.step_seconds:
            time.sleep(params.step_seconds)
    return EchoJobOutput(message=params.message, steps_done=params.steps)


class PurgeJobsInput(BaseModel):
    older_than_days: int = Field(30, ge=1, le=3650, description="Delete finished jobs (and their logs) older than this.")


class PurgeJobsOutput(BaseModel):
    deleted: int


def _purgeable(params: PurgeJobsInput):
    from datetime import timedelta

    from django.utils import timezone

    from .models import Job

    return Job.objects.filter(status__in=Job.FINISHED, created_at__lt=timezone.now() - timedelta(days=params.older_than_days))


def plan_purge_jobs(ctx: Context, params: PurgeJobsInput) -> dict:
    """The jobs a purge deletes now: their count (the cut-off moves with the clock, the rule does not)."""
    return {
        "summary": f"Delete the finished jobs (and their logs) older than {params.older_than_days} days.",
        "older_than_days": params.older_than_days,
        "jobs": _purgeable(params).count(),
    }


@operation("core.purge_jobs", risk=Risk.RISKY, target=lambda p: f"jobs older than {p.older_than_days} d", planner=plan_purge_jobs)
def purge_jobs(ctx: Context, params: PurgeJobsInput) -> PurgeJobsOutput:
    """Delete finished jobs and their logs older than N days. Risky: job history is lost (the audit log keeps its record)."""
    old = _purgeable(params)
    count = old.count()
    old.delete()
    return PurgeJobsOutput(deleted=count)


class JobRef(BaseModel):
    job_id: uuid.UUID = Field(description="The job (its id, as a long tool's deferred answer or the job page gives it).")


class CancelledJob(BaseModel):
    job_id: uuid.UUID
    status: str = Field(description="cancelled, or running until its next progress report (then cancelled).")


class JobFinished(OpsError):
    """Cancel of a job that already ended: nothing to do, nothing changed."""

    status_code = 409


@operation("core.cancel_job", risk=Risk.WRITE, target=lambda p: f"job {p.job_id}")
def cancel_job(ctx: Context, params: JobRef) -> CancelledJob:
    """Cancel a job: a queued one never starts; a running one stops at its next progress report; one whose
    worker is gone ends at once. A job that already ended is refused and left as it is."""
    from .models import Job

    job = Job.objects.filter(pk=params.job_id).first()
    if job is None:
        raise InvalidInput({"job_id": f"There is no job {params.job_id}."})
    if job.finished:
        raise JobFinished(f"The job had already {'been ' if job.status == Job.CANCELLED else ''}{job.status}: nothing to cancel.")
    jobs.cancel(job)
    return CancelledJob(job_id=job.pk, status=job.status)
