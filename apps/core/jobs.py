"""Long operations as Celery jobs: queue them, and report their progress live."""

from __future__ import annotations

import contextlib
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from pydantic import BaseModel

from . import hooks, leases
from .errors import OpsError
from .live import publish_template
from .models import Job, JobLogLine
from .redact import redact_model


class JobCancelled(OpsError):
    outcome = "failed"


class LeaseLost(BaseException):
    """The job was declared lost while this worker still ran it (a pause longer than the lease).

    A BaseException, as SystemExit is: an operation's own error handling (which may undo work,
    e.g. a deploy restoring the previous revision) must not run — the job is someone else's now."""


_held: ContextVar[list | None] = ContextVar("held_hand_overs", default=None)


@contextlib.contextmanager
def hand_over_after():
    """Jobs queued inside this block go to a worker when it ends, not at their commit. The gateway ends it
    after the call's audit event: a job's own events (started, done) never come before the event of the
    call that queued it (the vote that approved it, the call queued as a job), however fast the worker."""
    held: list = []
    token = _held.set(held)
    try:
        yield
    finally:
        _held.reset(token)
        for send in held:
            send()


def _hand_over(job_id: str, countdown: int) -> None:
    from .tasks import run_job

    held = _held.get()
    send = lambda: run_job.apply_async(args=[job_id], countdown=countdown)  # noqa: E731
    if held is None:
        send()
    else:
        held.append(send)


def enqueue(
    op,
    params: BaseModel,
    *,
    actor,
    channel: str,
    request_id: str = "",
    approval=None,
    delay_minutes: int = 0,
) -> Job:
    """Store the job and hand it to a worker once the transaction commits (and the call's audit event is written).
    `approval` is the request it runs under (approvals'): the job keeps its number only."""
    not_before = timezone.now() + timedelta(minutes=delay_minutes) if delay_minutes else None
    job = Job.objects.create(
        operation=op.name,
        params=params.model_dump(mode="json"),
        params_redacted=redact_model(params),
        target=op.target_of(params),
        requested_by=actor.user,
        credential=actor.credential,
        scopes=actor.scopes,
        channel=channel,
        approval_id=approval.pk if approval is not None else None,
        request_id=request_id,
        not_before=not_before,
        message="waiting for the wait timer" if not_before else "queued",
    )
    hooks.job_queued(job)
    countdown = delay_minutes * 60
    transaction.on_commit(lambda: _hand_over(str(job.pk), countdown))
    publish_job(job)
    return job


def publish_job(job: Job, line: JobLogLine | None = None) -> None:
    context = {"job": job, "line": line}
    publish_template(f"job.{job.pk}", "core/_job_live.html", context)
    if line is None:  # list pages only care about status changes
        publish_template("jobs", "core/_job_row_live.html", context)


def job_snapshot(topic: str) -> str:
    """The whole job page state (status and full log) for a browser that just subscribed."""
    try:
        job = Job.objects.filter(pk=uuid.UUID(topic.removeprefix("job."))).first()
    except ValueError:
        return ""
    if job is None:
        return ""
    return render_to_string("core/_job_snapshot.html", {"job": job, "lines": job.log_lines.all()[:2000]})


@dataclass
class Context:
    """What an operation function gets besides its params: who calls, how, and
    (for jobs) a way to report progress and notice cancellation."""

    actor: object
    channel: str
    operation: object
    request_id: str = ""
    job: Job | None = None
    # What a call run at once did, added to its audit event's params beside what it was asked (note_in_audit).
    audit_notes: dict = field(default_factory=dict)
    _last_beat: float = field(default=0.0, repr=False)

    @property
    def user(self):
        return self.actor.user

    def note_in_audit(self, **facts) -> None:
        """Record what the call did (counts, not secrets) in its audit event: a revocation's cancelled jobs."""
        self.audit_notes.update(facts)

    def log(self, text: str, level: str = "info") -> None:
        if self.job is None:
            return
        line = JobLogLine.objects.create(job=self.job, text=text[:4000], level=level)
        publish_job(self.job, line)
        if time.monotonic() - self._last_beat >= 1:  # a chatty job must not double its writes
            self._renew()

    def progress(self, percent: float, message: str = "") -> None:
        """Record progress (0-100) and tell the browsers watching; raises if cancelled."""
        if self.job is None:
            return
        self.check_cancelled()
        self.job.progress = max(0, min(100, int(percent)))
        if message:
            self.job.message = message[:300]
        self._renew(progress=self.job.progress, message=self.job.message)
        publish_job(self.job)

    def check_cancelled(self) -> None:
        """Raise if the job was cancelled, or if this worker no longer holds it."""
        if self.job is None:
            return
        state = Job.objects.filter(pk=self.job.pk).values("cancel_requested", "status", "worker").first() or {}
        if state.get("status") != Job.RUNNING or state.get("worker") != leases.worker_id():
            raise LeaseLost("This worker lost the job's lease (it was declared lost and resumed or ended elsewhere): stopping.")
        if state["cancel_requested"]:
            raise JobCancelled("The job was cancelled.")

    def _renew(self, **fields) -> None:
        """Renew the job's lease (with any fields to record); stop if this worker no longer holds it."""
        now = timezone.now()
        held = Job.objects.filter(pk=self.job.pk, status=Job.RUNNING, worker=leases.worker_id())
        if not held.update(heartbeat_at=now, **fields):
            raise LeaseLost("This worker lost the job's lease (it was declared lost and resumed or ended elsewhere): stopping.")
        self.job.heartbeat_at, self._last_beat = now, time.monotonic()


def cancel(job: Job, why: str = "") -> None:
    """End a job: a queued job never starts; a running one stops at its next progress report;
    one whose worker is gone ends at once. Called inside an operation (core.cancel_job, accounts.revoke_agent),
    whose audit event records it."""
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    ended = job.status == Job.QUEUED and Job.objects.filter(pk=job.pk, status=Job.QUEUED).update(
        status=Job.CANCELLED, finished_at=timezone.now(), message="cancelled before it started", error=why
    )
    job.refresh_from_db()
    if ended:
        hooks.job_ended(job)
    if leases.is_lost(job):
        from .gateway import recover_job

        recover_job(job)
        job.refresh_from_db()
    publish_job(job)


def cancel_queued_work(user, credential: str, why: str) -> int:
    """The hooks.on_credential_revoked of jobs: cancel the jobs `user` queued through `credential` (or one under it) that have not
    started (or wait to resume); how many. A running one goes on: it was started while the credential counted."""
    waiting = list(Job.objects.filter(hooks.revoked_references(credential), requested_by=user, status=Job.QUEUED))
    for job in waiting:
        cancel(job, why)
    return len(waiting)
