"""The one gateway. Web views, Celery tasks and MCP tools call `invoke()`;
nothing else calls an operation function.

Order: authenticate -> role -> rate limit -> validate -> approval policy ->
run (or admit what the call brings and queue it as a job) -> audit -> live event.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from pydantic import BaseModel, ValidationError

from . import hooks, jobs, leases, operations, ratelimit
from .errors import InvalidInput, OperationFailed, OpsError, PermissionDenied, RateLimited
from .metrics import JOB_SECONDS, OPERATION_CALLS, OPERATION_SECONDS
from .models import Job, JobLogLine
from .redact import redact_model, redact_text
from .resilience import redis_call

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What a gateway call produced: a result now, a queued job, or a pending approval."""

    status: str  # "ok" | "queued" | "pending"
    operation: operations.Operation
    result: BaseModel | None = None
    job: Job | None = None
    approval: object | None = None
    audit_seq: int | None = None


def validation_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for err in exc.errors():
        field = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
        message = err.get("msg", "invalid").removeprefix("Value error, ")
        errors.setdefault(field, message)
    return errors


def validate(op: operations.Operation, params) -> BaseModel:
    if isinstance(params, op.input):
        return params
    try:
        if isinstance(params, BaseModel):
            params = params.model_dump()
        return op.input.model_validate(params or {})
    except ValidationError as exc:
        raise InvalidInput(validation_errors(exc)) from None


def check_permission(op: operations.Operation, actor) -> None:
    if not actor.is_authenticated:
        raise PermissionDenied("Authentication required.")
    if not actor.has_perm(op.permission):
        roles = ", ".join(sorted(actor.roles)) or "no role"
        raise PermissionDenied(f"{actor.name} ({roles}) may not run {op.name}: it needs the {op.permission} permission.")


def check_rate(op: operations.Operation, actor) -> None:
    rate = settings.OPS_RATE_LIMITS.get(op.risk.value)
    if not rate or actor.is_system:
        return
    # Without its store the limit cannot be checked: refuse (503, clear message) rather than run unlimited.
    usage = redis_call(lambda: ratelimit.hit(f"ops.{op.risk.value}", actor.rate_key, rate))
    if usage.should_limit:
        wait = max(1, usage.time_left)
        raise RateLimited(f"Rate limit of {rate} {op.risk.value} operations reached; try again in {wait} s.")


def approval_needed(op: operations.Operation, data: BaseModel) -> tuple[object, object] | None:
    """(scope, policy) of a call that must wait for another person's approval, else None: one with an
    approval scope whose policy asks for approval, or one that lowers a guard (that always does)."""
    scope = op.scope_of(data)
    if scope is None:
        return None
    policy = hooks.approvals().policy_for(op.name, scope)
    return (scope, policy) if policy.requires_approval or op.lowers_guard(data) else None


def invoke(
    name: str,
    actor,
    params: dict | BaseModel | None = None,
    channel: str = "web",
    *,
    client_ip: str | None = None,
    request_id: str = "",
    reason: str = "",
    break_glass: bool = False,
) -> Outcome:
    """Call an operation as `actor`. Raises an OpsError subclass on denial,
    invalid input or failure — each already audited. `break_glass` (with a
    `reason`) runs a call that needs approval without it, where the scope allows."""
    with jobs.hand_over_after():  # the jobs it queues reach a worker after its audit event
        return _invoke(name, actor, params, channel, client_ip=client_ip, request_id=request_id, reason=reason, break_glass=break_glass)


def _invoke(
    name: str,
    actor,
    params: dict | BaseModel | None,
    channel: str,
    *,
    client_ip: str | None,
    request_id: str,
    reason: str,
    break_glass: bool,
) -> Outcome:
    op = operations.get(name)
    request_id = request_id or uuid.uuid4().hex
    started = time.perf_counter()
    audit = {"operation": op.name, "channel": channel, "actor": actor, "client_ip": client_ip, "request_id": request_id}
    data = ctx = None
    try:
        check_permission(op, actor)
        check_rate(op, actor)
        data = validate(op, params)
        audit["target"], audit["params"] = op.target_of(data), redact_model(data)
        if op.approval is not None:
            audit["approval_id"] = str(op.approval(data))
        review = None  # a break-glass run's review request
        waits = approval_needed(op, data)
        if waits is not None:
            scope, policy = waits
            gate = hooks.approvals()
            if reason:  # the why of a request or a break-glass run, in its event
                audit["params"] = {**audit["params"], "request_reason": redact_text(reason)}
            if break_glass:
                review = gate.break_glass(op, data, actor, channel, scope=scope, policy=policy, reason=reason)
                audit["approval_id"] = str(review.pk)
            else:
                approval = gate.request(op, data, actor, channel, scope=scope, policy=policy, reason=reason)
                event = _audit(audit, started, "pending", approval_id=str(approval.pk))
                return Outcome("pending", op, approval=approval, audit_seq=event.seq)
        if op.long:
            with transaction.atomic():
                if op.admit is not None:  # what only the call brings (a staged file) is taken now, as the caller
                    ctx = jobs.Context(actor=actor, channel=channel, operation=op, request_id=request_id)
                    data = validate(op, op.admit(ctx, data).model_dump(mode="json"))
                job = jobs.enqueue(op, data, actor=actor, channel=channel, request_id=request_id, approval=review)
            if ctx is not None:
                audit["params"] = {**audit["params"], **ctx.audit_notes}
            event = _audit(audit, started, "ok")
            return Outcome("queued", op, job=job, audit_seq=event.seq)
        ctx = jobs.Context(actor=actor, channel=channel, operation=op, request_id=request_id)
        result = _checked_output(op, op.func(ctx, data))
        audit["params"] = {**audit["params"], **ctx.audit_notes}
    except OpsError as exc:
        if ctx is not None:  # what it noted before it was refused (an OAuth exchange: whose code it was)
            audit["params"] = {**audit["params"], **ctx.audit_notes}
        _audit(audit, started, exc.outcome, error=exc.message)
        raise
    except Exception as exc:
        log.exception("operation %s failed (request %s)", op.name, request_id)
        _audit(audit, started, "failed", error=f"internal error: {type(exc).__name__}")
        raise OperationFailed(f"{op.name} failed with an internal error; reference {request_id}.") from exc
    event = _audit(audit, started, "ok")
    return Outcome("ok", op, result=result, audit_seq=event.seq)


def _checked_output(op: operations.Operation, result) -> BaseModel:
    if isinstance(result, op.output):
        return result
    return op.output.model_validate(result)


def _audit(fields: dict, started: float, outcome: str, **extra):
    duration = time.perf_counter() - started
    OPERATION_CALLS.labels(fields["operation"], outcome, fields["channel"]).inc()
    OPERATION_SECONDS.labels(fields["operation"]).observe(duration)
    return hooks.record_audit(outcome=outcome, duration_ms=duration * 1000, **fields, **extra)


def _job_actor(job: Job):
    actors = hooks.actors()
    # Work the console queued on its own behalf (channel "system", no requester) runs as the system actor.
    is_system = job.channel == "system" and job.requested_by_id is None
    return actors.system() if is_system else actors.for_credential(job.requested_by, job.credential, job.scopes)


def run_job(job_id: str) -> None:
    """Run a queued job on a worker, as the user who requested it, through the credential they called through
    (an API token, an OAuth agent): with no more than its scopes then, and not at all once it is revoked.

    Delivered again (acks late: a worker died, a visibility timeout passed), it does nothing to a
    job that is finished or whose lease is alive; a job whose worker is gone is recovered
    (resumed or failed), never run again from the start."""
    job = Job.objects.select_related("requested_by").filter(pk=job_id).first()
    if job is not None and leases.is_lost(job):
        recover_job(job)
        return
    if job is None or job.status != Job.QUEUED:
        return  # already run, cancelled, running elsewhere, or its row is gone
    if job.not_before and job.not_before > timezone.now():  # delivered early (a redelivery, a manual run): the wait timer holds
        from .tasks import run_job as task

        task.apply_async(args=[str(job.pk)], eta=job.not_before)
        return
    op = operations.get(job.operation)
    actor = _job_actor(job)
    started = time.perf_counter()
    now = timezone.now()
    claimed = Job.objects.filter(pk=job.pk, status=Job.QUEUED, cancel_requested=False).update(
        status=Job.RUNNING, started_at=Coalesce("started_at", Value(now)), message="resuming" if job.attempts else "running",
        worker=leases.worker_id(), heartbeat_at=now, attempts=F("attempts") + 1,
    )  # fmt: skip
    if not claimed:
        return
    job.refresh_from_db()
    jobs.publish_job(job)
    ctx = jobs.Context(actor=actor, channel="worker", operation=op, request_id=job.request_id, job=job)
    try:
        if refusal := actor.refusal():
            raise PermissionDenied(refusal)
        check_permission(op, actor)
        params = validate(op, job.params)
        # The start checks admit a job once (an approval's at-most-once claim, its plan): a resumed job of a
        # resumable operation continues the execution it was admitted to. Any other job back in the queue
        # meets the checks again, which refuse a second run; so does a resume whose first start died
        # between the claim and `admitted`.
        if not (job.admitted and op.resumable):
            hooks.job_starting(ctx, params)
            Job.objects.filter(pk=job.pk).update(admitted=True)
        result = _checked_output(op, op.func(ctx, params))
        status, error, outcome = Job.SUCCEEDED, "", "ok"
        job.result = result.model_dump(mode="json")
    except jobs.LeaseLost:
        log.warning("job %s (%s) stopped: its lease was lost", job.pk, op.name)
        return  # whoever took the lease over ends the job and audits it
    except jobs.JobCancelled as exc:
        status, error, outcome = Job.CANCELLED, exc.message, "failed"
    except OpsError as exc:
        status, error, outcome = Job.FAILED, exc.message, exc.outcome
    except Exception as exc:
        log.exception("job %s (%s) failed", job.pk, op.name)
        status, error, outcome = Job.FAILED, f"internal error: {type(exc).__name__}; reference {job.request_id}", "failed"
    _finish_job(job, op, actor, status, error, outcome, time.perf_counter() - started, holder=leases.worker_id())


def _finish_job(job: Job, op, actor, status: str, error: str, outcome: str, duration: float, *, holder: str) -> None:
    """Record how a job ended, once: only while `holder` still holds its lease (compare and set)."""
    job.status, job.error, job.finished_at = status, error, timezone.now()
    job.progress = 100 if status == Job.SUCCEEDED else job.progress
    job.message = {Job.SUCCEEDED: "done", Job.CANCELLED: "cancelled"}.get(status, "failed")
    fields = ["status", "error", "finished_at", "progress", "message", "result"]
    audit = {"operation": op.name, "channel": "worker", "actor": actor, "target": job.target, "params": job.params_redacted,
             "request_id": job.request_id, "approval_id": str(job.approval_id or "")}  # fmt: skip
    with transaction.atomic():  # nobody sees the job ended without its audit event
        if not Job.objects.filter(pk=job.pk, status=Job.RUNNING, worker=holder).update(**{name: getattr(job, name) for name in fields}):
            log.warning("job %s (%s) ended as %s, but its lease had been taken over: not recorded", job.pk, op.name, status)
            return
        _audit(audit, time.perf_counter() - duration, outcome, error=error)
    JOB_SECONDS.labels(op.name, status).observe(duration)
    hooks.job_ended(job)
    jobs.publish_job(job)
    if job.approval_id:
        from .notify import notify

        notify(job.requested_by, *hooks.job_notice(job, op))


def recover_job(job: Job, now=None) -> None:
    """A running job lost its worker: end it if cancelled, resume it if its operation is resumable
    (and it has attempts left), otherwise fail it saying where it stopped. Never left running."""
    op = operations.get(job.operation)
    since = job.heartbeat_at or job.started_at
    why = f"worker lost at {job.progress} %: no heartbeat since {since:%H:%M:%S} UTC" if since else f"worker lost at {job.progress} %"
    duration = ((now or timezone.now()) - job.started_at).total_seconds() if job.started_at else 0.0
    lost = Job.objects.filter(pk=job.pk, status=Job.RUNNING, worker=job.worker, heartbeat_at=job.heartbeat_at)
    if job.cancel_requested:
        _finish_job(job, op, _job_actor(job), Job.CANCELLED, f"The job was cancelled ({why}).", "failed", duration, holder=job.worker)
    elif op.resumable and job.attempts < settings.JOB_MAX_ATTEMPTS:
        if not lost.update(status=Job.QUEUED, worker="", message=f"resuming: {why}"[:300]):
            return  # it beat meanwhile, or someone else recovered it
        JobLogLine.objects.create(job=job, text=f"{why}; resuming (attempt {job.attempts + 1})", level="warning")
        job.refresh_from_db()
        jobs.publish_job(job)
        from .tasks import run_job as task

        transaction.on_commit(lambda: task.apply_async(args=[str(job.pk)]))
    else:
        if op.resumable:
            why += f"; not resumed again after {job.attempts} attempts"
        _finish_job(job, op, _job_actor(job), Job.FAILED, why, "failed", duration, holder=job.worker)


def reap_jobs(now=None) -> int:
    """Recover every running job whose worker is gone; the number recovered."""
    lost = leases.lost_jobs(now)
    for job in lost:
        recover_job(job, now)
    return len(lost)
