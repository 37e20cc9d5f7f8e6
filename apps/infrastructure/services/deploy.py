"""Deployments: deploy, roll back, restart, promote, abort, and follow them."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from apps.core import jobs
from apps.core.errors import OperationFailed, OpsError
from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from ..deployments import log_line, publish_deployment, service_of
from ..errors import InfrastructureError
from ..models import Deployment, DeploymentLogLine
from ..plans import deploy_plan
from ..rollout import execute
from ..specs import Strategy, StrategyOptions
from .environments import environment_scope


class ServiceRef(BaseModel):
    environment: str
    service: str

    @field_validator("service")
    @classmethod
    def _exists(cls, service: str, info: ValidationInfo) -> str:
        """Refused as invalid input next to the service field, before any approval request."""
        if "environment" in info.data:  # else the environment's own error says why
            try:
                service_of(info.data["environment"], service)
            except InfrastructureError as exc:
                raise ValueError(exc.message) from None
        return service


class DeployInput(ServiceRef):
    image: str | None = Field(None, description="New image reference for this deploy; empty = the service's image.")
    strategy: Strategy | None = Field(None, description="Override the service's strategy for this deploy.")
    options: StrategyOptions | None = Field(None, description="Override the strategy options (batch size, steps, ...).")


class DeploymentInfo(BaseModel):
    deployment: int
    environment: str
    service: str
    kind: str
    revision: int
    image: str
    strategy: str
    status: str = Field(description="pending approval, queued, running, paused, succeeded, failed, rolled back or aborted.")
    step: str
    reason: str
    requested_by: str | None
    approved_by: str | None
    approval_request: int | None
    created_at: datetime
    finished_at: datetime | None
    url: str
    log: list[str] = Field(default_factory=list)


def info(deployment: Deployment, log_lines: int = 0) -> DeploymentInfo:
    lines = []
    if log_lines:
        recent = deployment.log_lines.order_by("-id")[:log_lines]
        lines = [f"{line.at:%H:%M:%S} {line.text}" for line in reversed(recent)]
    return DeploymentInfo(
        deployment=deployment.pk, environment=deployment.service.environment.name, service=deployment.service.name,
        kind=deployment.kind, revision=deployment.revision.number, image=deployment.revision.spec.get("image", ""),
        strategy=deployment.strategy, status=deployment.status, step=deployment.step_label, reason=deployment.reason,
        requested_by=getattr(deployment.requested_by, "username", None), approved_by=deployment.approved_by or None,
        approval_request=deployment.approval_id, created_at=deployment.created_at, finished_at=deployment.finished_at,
        url=settings.CONSOLE_BASE_URL.rstrip("/") + deployment.get_absolute_url(), log=lines,
    )  # fmt: skip


def run(ctx: Context) -> DeploymentInfo:
    """Run the deployment planned for this job; a deployment that did not succeed fails the job with its reason."""
    deployment = Deployment.objects.select_related("service__environment", "revision").filter(job=ctx.job).first() if ctx.job else None
    if deployment is None:
        raise InfrastructureError("This job has no planned deployment (deployments run as jobs only).")
    return _outcome(execute(ctx, deployment))


def _outcome(deployment: Deployment) -> DeploymentInfo:
    if deployment.status in (Deployment.FAILED, Deployment.ROLLED_BACK, Deployment.ABORTED):
        raise OperationFailed(f"Deployment #{deployment.pk} {deployment.status}: {deployment.reason}")
    return info(deployment)


def plan_deploy(ctx: Context, params: DeployInput) -> dict:
    """The resolved spec the deploy pins and its diff against the revision serving now."""
    options = params.options.model_dump(mode="json") if params.options else None
    return deploy_plan(service_of(params.environment, params.service), image=params.image, strategy=params.strategy, options=options)


@operation("infrastructure.deploy", risk=Risk.RISKY, long=True, resumable=True, approval_scope=lambda p: environment_scope(p.environment),
           target=lambda p: f"{p.environment}/{p.service}", planner=plan_deploy)  # fmt: skip
def deploy(ctx: Context, params: DeployInput) -> DeploymentInfo:
    """Deploy a service (optionally with a new image) with its strategy: recreate, rolling, blue_green or canary.
    In a protected environment the deploy waits for approval (status "pending approval"); the revision is pinned
    when requested. A failed health check or analysis rolls back to the previous revision and says why.
    Follow it with infrastructure.deployment."""
    return run(ctx)


class RollbackInput(ServiceRef):
    revision: int | None = Field(
        None, description="Revision number to deploy again; empty = the last one that succeeded before the current."
    )
    strategy: Strategy | None = None


@operation("infrastructure.rollback", risk=Risk.WRITE, long=True, resumable=True, target=lambda p: f"{p.environment}/{p.service}")
def rollback(ctx: Context, params: RollbackInput) -> DeploymentInfo:
    """Deploy an earlier revision of a service again (every revision keeps the full spec it applied)."""
    return run(ctx)


@operation("infrastructure.restart", risk=Risk.WRITE, long=True, resumable=True, target=lambda p: f"{p.environment}/{p.service}")
def restart(ctx: Context, params: ServiceRef) -> DeploymentInfo:
    """Restart a service without downtime: a rolling replacement of every replica with the current revision."""
    return run(ctx)


class DeploymentRef(BaseModel):
    deployment: int = Field(description="Deployment id.")


@operation("infrastructure.resume_deployment", risk=Risk.WRITE, long=True, resumable=True, exposed=False,
           target=lambda p: f"deployment {p.deployment}")  # fmt: skip
def resume_deployment(ctx: Context, params: DeploymentRef) -> DeploymentInfo:
    """Continue a paused deployment after a promotion or an abort (queued by infrastructure.promote / .abort)."""
    deployment = Deployment.objects.select_related("service__environment", "revision").filter(pk=params.deployment).first()
    resumed = deployment is not None and deployment.status == Deployment.RUNNING and ctx.job and deployment.job_id == ctx.job.pk
    if deployment is None or (deployment.status != Deployment.QUEUED and not resumed):
        raise InfrastructureError(f"Deployment #{params.deployment} is not waiting to be resumed.")
    Deployment.objects.filter(pk=deployment.pk).update(job=ctx.job)
    return _outcome(execute(ctx, deployment))


def _deployment(pk: int) -> Deployment:
    deployment = Deployment.objects.select_related("service__environment", "revision", "job").filter(pk=pk).first()
    if deployment is None:
        raise InfrastructureError(f"There is no deployment #{pk}.", 404)
    return deployment


def _resume(ctx: Context, deployment: Deployment, undo: dict, line: DeploymentLogLine) -> None:
    """Queue a paused deployment again (infrastructure.resume_deployment, its own audited call) to act on the request
    (abort, promote) just recorded. The request is recorded first: the resumed job reads it at its first check. Refused
    by the gateway (the caller's rate limit), the request goes with it — `undo` (its fields as they were) and its log
    `line` — so the failed call changes nothing, and no flag stays behind for a later resume to act on. Not one
    transaction: the refused call's own audit event must stay."""
    from apps.core.gateway import invoke

    Deployment.objects.filter(pk=deployment.pk).update(status=Deployment.QUEUED)
    try:
        invoke("infrastructure.resume_deployment", ctx.actor, {"deployment": deployment.pk}, ctx.channel, request_id=ctx.request_id)
    except OpsError:
        with transaction.atomic():
            Deployment.objects.filter(pk=deployment.pk).update(status=Deployment.PAUSED, **undo)
            line.delete()
        raise
    deployment.refresh_from_db()


class AbortInput(DeploymentRef):
    reason: str = Field("", max_length=500)


@operation("infrastructure.abort", risk=Risk.WRITE, target=lambda p: f"deployment {p.deployment}")
def abort(ctx: Context, params: AbortInput) -> DeploymentInfo:
    """Abort a queued, running or paused deployment: the previous revision is restored (a canary's stable
    replicas take all traffic again). A deployment waiting for approval is stopped by rejecting its request."""
    deployment = _deployment(params.deployment)
    why = f"aborted by {ctx.actor.name}" + (f": {params.reason}" if params.reason else "")
    if deployment.status == Deployment.PENDING_APPROVAL:
        raise InfrastructureError(
            f"Deployment #{deployment.pk} waits for approval: reject approval request #{deployment.approval_id} instead."
        )
    if deployment.finished:
        raise InfrastructureError(f"Deployment #{deployment.pk} already {deployment.status}.")
    undo = {"abort_requested": deployment.abort_requested, "reason": deployment.reason}
    Deployment.objects.filter(pk=deployment.pk).update(abort_requested=True, reason=why)
    deployment.refresh_from_db()
    line = log_line(deployment, f"abort requested by {ctx.actor.name}", "warning")
    if deployment.status == Deployment.PAUSED:
        _resume(ctx, deployment, undo, line)
    elif deployment.status == Deployment.QUEUED and deployment.started_at is None and deployment.job:
        jobs.cancel(deployment.job)  # never started: nothing on the engine to restore
        if deployment.job.status == deployment.job.CANCELLED:
            deployment.status, deployment.finished_at = Deployment.ABORTED, timezone.now()
            deployment.save(update_fields=["status", "finished_at"])
    # otherwise it is running (or about to resume): its job sees the request at its next check
    publish_deployment(deployment)
    return info(deployment)


@operation("infrastructure.promote", risk=Risk.WRITE, target=lambda p: f"deployment {p.deployment}")
def promote(ctx: Context, params: DeploymentRef) -> DeploymentInfo:
    """Promote a canary past its current pause (or inconclusive analysis): the next steps run."""
    deployment = _deployment(params.deployment)
    if deployment.status not in (Deployment.PAUSED, Deployment.RUNNING):
        raise InfrastructureError(f"Deployment #{deployment.pk} is {deployment.status}: only a paused or running canary can be promoted.")
    undo = {"promote_requested": deployment.promote_requested}
    Deployment.objects.filter(pk=deployment.pk).update(promote_requested=True)
    line = log_line(deployment, f"promoted by {ctx.actor.name}")
    if deployment.status == Deployment.PAUSED:
        _resume(ctx, deployment, undo, line)
    publish_deployment(deployment)
    return info(deployment)


class DeploymentsInput(BaseModel):
    environment: str | None = None
    service: str | None = None
    status: str | None = Field(None, description="One of the deployment statuses.")
    limit: int = Field(20, ge=1, le=200)


class DeploymentList(BaseModel):
    deployments: list[DeploymentInfo]


@operation("infrastructure.deployments", risk=Risk.READ)
def deployments(ctx: Context, params: DeploymentsInput) -> DeploymentList:
    """List deployments, newest first, optionally of one environment, service or status."""
    qs = Deployment.objects.select_related("service__environment", "revision", "requested_by")
    if params.environment:
        qs = qs.filter(service__environment__name=params.environment)
    if params.service:
        qs = qs.filter(service__name=params.service)
    if params.status:
        qs = qs.filter(status=params.status)
    return DeploymentList(deployments=[info(d) for d in qs[: params.limit]])


@operation("infrastructure.deployment", risk=Risk.READ, target=lambda p: f"deployment {p.deployment}")
def deployment_status(ctx: Context, params: DeploymentRef) -> DeploymentInfo:
    """One deployment: status, current step, why it failed or rolled back, who requested and approved it, and its step log."""
    return info(_deployment(params.deployment), log_lines=200)


class RevisionsInput(ServiceRef):
    limit: int = Field(20, ge=1, le=200)


class RevisionInfo(BaseModel):
    number: int
    current: bool
    spec: dict = Field(description="The full spec applied (secret values are never included).")
    created_at: datetime
    created_by: str | None


class RevisionList(BaseModel):
    revisions: list[RevisionInfo]


@operation("infrastructure.revisions", risk=Risk.READ, target=lambda p: f"{p.environment}/{p.service}")
def revisions(ctx: Context, params: RevisionsInput) -> RevisionList:
    """A service's revisions, newest first, each with the full spec it applied; any of them can be rolled back to."""
    service = service_of(params.environment, params.service)
    return RevisionList(revisions=[
        RevisionInfo(number=r.number, current=r.pk == service.current_revision_id, spec=r.spec, created_at=r.created_at,
                     created_by=getattr(r.created_by, "username", None))
        for r in service.revisions.select_related("created_by")[: params.limit]
    ])  # fmt: skip
