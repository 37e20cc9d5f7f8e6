"""Deployments as records: planned the moment they are requested (so a deploy
waiting for approval is a deployment in status "pending approval", with its
revision pinned), followed live, and told apart from the work that runs them.

The gateway creates an ApprovalRequest (protected environment) or a Job (the
rest) for `infrastructure.deploy` / `.rollback` / `.restart`; the hooks below
(approvals' request_recorded / request_not_run, core's job_queued / job_ended,
registered in apps.py) turn those into Deployment rows, so every front door
(web, MCP, worker) gets the same record.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef
from django.template.loader import render_to_string
from django.utils import timezone

from apps.approvals.models import ApprovalRequest, ApprovalVote
from apps.core.live import publish_template
from apps.core.models import Job

from .errors import InfrastructureError
from .models import Deployment, DeploymentLogLine, Environment, Revision, Service
from .specs import StrategyOptions

PLANNED_OPERATIONS = ("infrastructure.deploy", "infrastructure.rollback", "infrastructure.restart")


def publish_deployment(deployment: Deployment) -> None:
    context = {"deployment": deployment}
    publish_template(f"deployment.{deployment.pk}", "infrastructure/_deployment_live.html", context)
    publish_template("deployments", "infrastructure/_deployment_row_live.html", context)


def deployment_snapshot(topic: str) -> str:
    """Status and the whole step log, sent to a browser as it subscribes (nothing missed)."""
    pk = topic.removeprefix("deployment.")
    deployment = Deployment.objects.filter(pk=pk).first() if pk.isdigit() else None
    if deployment is None:
        return ""
    context = {"deployment": deployment, "lines": deployment.log_lines.all()[:2000]}
    return render_to_string("infrastructure/_deployment_snapshot.html", context)


def log_line(deployment: Deployment, text: str, level: str = "info") -> DeploymentLogLine:
    line = DeploymentLogLine.objects.create(deployment=deployment, text=text[:4000], level=level)
    publish_template(f"deployment.{deployment.pk}", "infrastructure/_deployment_line_live.html", {"line": line})
    return line


def service_of(environment: str, service: str) -> Service:
    found = Service.objects.select_related("environment").filter(environment__name=environment, name=service).first()
    if found is None:
        if not Environment.objects.filter(name=environment).exists():
            raise InfrastructureError(f"There is no environment named {environment!r}.", 404)
        raise InfrastructureError(f"Environment {environment} has no service named {service!r}.")
    return found


def with_served(revisions):
    """Revisions annotated `has_served`: the ones a rollback may go back to (pages offer only those)."""
    return revisions.annotate(has_served=Exists(Deployment.objects.filter(revision=OuterRef("pk"), status=Deployment.SUCCEEDED)))


def rollback_target(service: Service, number: int | None) -> Revision:
    """The revision a rollback deploys: the one asked for, or the last one that succeeded before the current.
    Only a revision that once served can be rolled back to: a revision is pinned when a deploy is requested,
    so one still pending approval, rejected or failed must not reach an environment through a rollback."""
    if number is not None:
        revision = with_served(service.revisions.filter(number=number)).first()
        if revision is None:
            raise InfrastructureError(f"{service} has no revision {number}.")
        if not revision.has_served:
            raise InfrastructureError(
                f"Revision {number} of {service} never deployed successfully (pending approval, rejected or failed): "
                "a rollback can only go back to a revision that has served."
            )
        return revision
    earlier = (
        Deployment.objects.filter(service=service, status=Deployment.SUCCEEDED)
        .exclude(revision_id=service.current_revision_id)
        .select_related("revision")
        .order_by("-finished_at")
        .first()
    )
    if earlier is None:
        raise InfrastructureError(f"{service} has no earlier successful revision to roll back to.")
    return earlier.revision


def plan(operation: str, params: dict, user, *, job: Job | None = None, approval: ApprovalRequest | None = None) -> Deployment:
    """Record the deployment a request asks for, with its revision pinned now."""
    service = service_of(params["environment"], params["service"])
    if operation == "infrastructure.deploy":
        spec = service.parsed_spec
        if params.get("image"):
            spec.image = params["image"]
        spec.secret_env_names = sorted(service.secret_env or {})
        last = service.revisions.order_by("-number").first()
        approved_id = ((approval.plan if approval else None) or {}).get("after", {}).get("image_id")  # the bytes voted on
        revision = Revision.objects.create(
            service=service, number=(last.number + 1 if last else 1), spec=spec.model_dump(mode="json"),
            secret_env=service.secret_env or {}, image_id=approved_id or "", created_by=user,
        )  # fmt: skip
        kind = "deploy"
    elif operation == "infrastructure.restart":
        if service.current_revision is None:
            raise InfrastructureError(f"{service} has never been deployed: there is nothing to restart.")
        revision, kind = service.current_revision, "restart"
        params = {**params, "strategy": "rolling"}
    else:
        revision = rollback_target(service, params.get("revision"))
        kind = "rollback"
    options = StrategyOptions.model_validate({**(service.strategy_options or {}), **(params.get("options") or {})})
    deployment = Deployment.objects.create(
        service=service,
        kind=kind,
        revision=revision,
        strategy=params.get("strategy") or service.strategy,
        options=options.model_dump(mode="json"),
        status=Deployment.PENDING_APPROVAL if approval else Deployment.QUEUED,
        requested_by=user,
        approval=approval,
        job=job,
    )
    waiting = f"waiting for approval (request #{approval.pk}, quorum {approval.quorum})" if approval else "queued"
    log_line(deployment, f"{kind} of r{revision.number} ({revision.spec['image']}) requested by {user}; {waiting}")
    publish_deployment(deployment)
    return deployment


def request_recorded(approval: ApprovalRequest) -> None:
    """Approvals' request-recorded hook: a deploy waiting for approval is a deployment "pending approval" at once."""
    if approval.operation in PLANNED_OPERATIONS:
        plan(approval.operation, approval.params, approval.requested_by, approval=approval)


def request_not_run(approval: ApprovalRequest) -> None:
    """Approvals' request-not-run hook (rejected, expired, withdrawn, drifted): its deployment is aborted, saying why."""
    if approval.operation not in PLANNED_OPERATIONS:
        return
    # A drifted request was approved (its deployment queued) but never started: nothing ran on the engine.
    drifted = approval.status == ApprovalRequest.DRIFTED
    waiting = (Deployment.PENDING_APPROVAL, Deployment.QUEUED) if drifted else (Deployment.PENDING_APPROVAL,)
    for deployment in Deployment.objects.filter(approval=approval, status__in=waiting):
        rejected_by = ", ".join(v.voter.username for v in approval.votes.filter(decision=ApprovalVote.REJECT).select_related("voter"))
        why = {
            ApprovalRequest.REJECTED: f"rejected by {rejected_by}",
            ApprovalRequest.EXPIRED: "expired without a decision",
            ApprovalRequest.WITHDRAWN: "withdrawn: the agent that asked was revoked",
            ApprovalRequest.DRIFTED: "drifted: what would deploy changed after approval, so nothing was deployed",
        }[approval.status]
        _not_deployed(deployment, f"approval request #{approval.pk} {why}", timezone.now())


def job_queued(job: Job) -> None:
    """Core's job-queued hook: an approved request's job queues the deployment it planned; any other deploy,
    rollback or restart job plans its deployment now."""
    if job.operation not in PLANNED_OPERATIONS:
        return
    deployment = Deployment.objects.filter(approval_id=job.approval_id).first() if job.approval_id else None
    if deployment is None:
        plan(job.operation, job.params, job.requested_by, job=job)
        return
    approvers = ApprovalVote.objects.filter(request_id=job.approval_id, decision=ApprovalVote.APPROVE).select_related("voter")
    deployment.job, deployment.status = job, Deployment.QUEUED
    deployment.approved_by = ", ".join(v.voter.username for v in approvers)[:300]
    deployment.save(update_fields=["job", "status", "approved_by"])
    log_line(deployment, f"approved by {deployment.approved_by}; queued")
    publish_deployment(deployment)


def job_ended(job: Job) -> None:
    """A deploy, rollback or restart job that ended before its rollout started (cancelled while queued,
    refused at its start checks: a revoked credential, a lost permission) leaves its deployment queued:
    it is aborted, saying why; nothing ran on the engine. One whose rollout ran recorded its own end."""
    if job.operation not in PLANNED_OPERATIONS:
        return
    # Admitted (its start checks passed, as stored): its rollout ran, or a promote queued the deployment again meanwhile.
    for deployment in Deployment.objects.filter(job=job, job__admitted=False, status=Deployment.QUEUED):
        _not_deployed(deployment, f"job {job.status} before it started: {job.error or job.message or job.status}", job.finished_at)


def _not_deployed(deployment: Deployment, reason: str, at) -> None:
    """A deployment that never reached the engine ends aborted, saying why."""
    deployment.status, deployment.reason, deployment.finished_at = Deployment.ABORTED, reason, at
    deployment.save(update_fields=["status", "reason", "finished_at"])
    log_line(deployment, f"not deployed: {reason}", "warning")
    publish_deployment(deployment)


def deployment_link(approval: ApprovalRequest) -> dict[str, str]:
    """The deployment a deploy request planned, for its approval page."""
    deployment = Deployment.objects.filter(approval=approval).only("pk").first() if approval.operation in PLANNED_OPERATIONS else None
    return {"deployment": deployment.get_absolute_url()} if deployment else {}


def job_notice(job: Job) -> tuple[str, str] | None:
    """A deploy, rollback or restart job's notice in deployment terms, linking the deployment."""
    if job.operation not in PLANNED_OPERATIONS:
        return None
    deployment = Deployment.objects.select_related("service__environment").filter(job=job).first()
    if deployment is None:
        return None
    return f"{deployment.service} {deployment.kind} {deployment.status}", deployment.get_absolute_url()
