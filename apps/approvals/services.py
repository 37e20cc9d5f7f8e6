"""Four-eyes approval. Requests are created by the gateway; votes come only
from people in the web UI (never from an API token), so no agent can approve."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.utils import timezone
from pydantic import BaseModel, Field

from apps.core import hooks, jobs
from apps.core.errors import OpsError, PermissionDenied
from apps.core.jobs import Context
from apps.core.live import publish_template
from apps.core.models import Job
from apps.core.notify import notify
from apps.core.operations import Risk, operation
from apps.core.prepared import PreparedQuery
from apps.core.redact import redact_model

from . import plans
from .hooks import request_not_run, request_recorded
from .models import ApprovalPolicy, ApprovalRequest, ApprovalVote
from .policies import quorum_reached


class ApprovalError(OpsError):
    pass


@dataclass(frozen=True)
class Policy:
    requires_approval: bool = True
    quorum: int = 1
    expiry_hours: int = 24
    wait_minutes: int = 0
    break_glass_admins: bool = True
    break_glass_tokens: bool = False
    group_quorum: dict | None = None  # {"group": approvals needed from it}


def policy_for(operation_name: str, scope: str) -> Policy:
    """The most specific policy: (op, scope), (op, any scope), ("*", scope), ("*", any)."""
    candidates = ApprovalPolicy.objects.filter(operation__in=[operation_name, "*"], scope__in=[scope, ""])
    ranked = sorted(candidates, key=lambda p: (p.operation == "*", p.scope == ""))
    if ranked:
        p = ranked[0]
        return Policy(
            p.requires_approval,
            max(1, p.quorum),
            p.expiry_hours,
            p.wait_minutes,
            p.break_glass_admins,
            p.break_glass_tokens,
            p.group_quorum,
        )
    return Policy(expiry_hours=settings.APPROVAL_DEFAULT_EXPIRY_HOURS)


def request_approval(op, params: BaseModel, actor, channel: str, *, scope: str, policy: Policy, reason: str = "", **extra):
    """Record a request with the plan it binds to (computed now, from current state) and its hash."""
    if actor.user is None:
        raise ApprovalError("Only a user can request a risky operation.")
    plan = plans.compute(op, Context(actor=actor, channel=channel, operation=op), params)
    fields = dict(
        operation=op.name,
        params=params.model_dump(mode="json"),
        params_redacted=redact_model(params),
        target=op.target_of(params),
        scope=scope,
        reason=reason[:2000],
        requested_by=actor.user,
        credential=actor.credential,
        scopes=actor.scopes,
        channel=channel,
        quorum=policy.quorum,
        group_quorum=policy.group_quorum or {},
        wait_minutes=policy.wait_minutes,
        expires_at=timezone.now() + timedelta(hours=policy.expiry_hours),
        plan=plan,
        plan_hash=plans.plan_hash(plan),
    )
    approval = ApprovalRequest.objects.create(**{**fields, **extra})
    request_recorded(approval)
    publish(approval)
    return approval


class VoteRefused(ApprovalError):
    """A vote or acknowledgement that the rules refuse (already voted, another plan, decided, not found)."""

    outcome = "denied"


def vote(
    approval_id: int, voter, decision: str, comment: str = "", *, client_ip=None, request_id="", plan_hash: str | None = None
) -> ApprovalRequest:
    """Record one person's vote on the request's plan hash, through the gateway (`approvals.approve` or
    `approvals.reject`: role check, rate limit, one audit event). One rejection rejects; the quorum of
    approvals runs the job.

    `voter` is an Actor from a web session: votes through API tokens are refused. `plan_hash` is the hash of the
    plan the voter was shown (the web form always sends it): a vote on another plan, or on none, is refused.
    """
    from apps.core.gateway import invoke

    if decision not in (ApprovalVote.APPROVE, ApprovalVote.REJECT):
        raise VoteRefused("A vote is approve or reject.")
    params = {"request_id": approval_id, "comment": comment, "plan_hash": plan_hash}
    invoke(f"approvals.{decision}", voter, params, "web", client_ip=client_ip, request_id=request_id)
    return ApprovalRequest.objects.get(pk=approval_id)


class VoteInput(BaseModel):
    request_id: int = Field(description="The approval request voted on.")
    comment: str = Field("", max_length=2000, json_schema_extra={"audit": "text"})
    plan_hash: str | None = Field(None, description="The plan hash the voter was shown: a vote on another plan is refused.")


class VoteOutput(BaseModel):
    request_id: int
    status: str


def request_target(params) -> str:
    """What a call about a request acts on, for the audit log: the requested operation."""
    return ApprovalRequest.objects.filter(pk=params.request_id).values_list("operation", flat=True).first() or ""


# People vote in the web UI only: not exposed to agents (a token's vote is refused anyway).
_VOTE = dict(risk=Risk.WRITE, permission="approvals.approve_requests", idempotent=False, exposed=False, target=request_target,
             approval=lambda p: p.request_id)  # fmt: skip


@operation("approvals.approve", **_VOTE)
def approve(ctx: Context, params: VoteInput) -> VoteOutput:
    """Approve another person's request, on the plan you were shown; the quorum of approvals runs it."""
    return _cast(ctx, params, ApprovalVote.APPROVE)


@operation("approvals.reject", **_VOTE)
def reject(ctx: Context, params: VoteInput) -> VoteOutput:
    """Reject another person's request: one rejection rejects it."""
    return _cast(ctx, params, ApprovalVote.REJECT)


def _cast(ctx: Context, params: VoteInput, decision: str) -> VoteOutput:
    voter = ctx.actor
    current = ApprovalRequest.objects.filter(pk=params.request_id).first()
    if current is None:
        raise VoteRefused("No such approval request.")
    expire_if_due(current)
    with transaction.atomic():
        approval = ApprovalRequest.objects.select_for_update().get(pk=params.request_id)
        _check_can_vote(approval, voter)
        if params.plan_hash is not None and params.plan_hash != approval.plan_hash:
            raise VoteRefused("The plan you were shown is not this request's plan: reload the page and review it again.")
        try:
            with transaction.atomic():
                ApprovalVote.objects.create(
                    request=approval, voter=voter.user, decision=decision, comment=params.comment, plan_hash=approval.plan_hash
                )
        except IntegrityError:
            raise VoteRefused("You have already voted on this request.") from None
        if decision == ApprovalVote.REJECT:
            _decide(approval, ApprovalRequest.REJECTED)
        elif quorum_reached(approval):
            _decide(approval, ApprovalRequest.APPROVED)
            from apps.core import operations

            op = operations.get(approval.operation)
            jobs.enqueue(op, op.input.model_validate(approval.params), actor=_requester_actor(approval), channel=approval.channel,
                         request_id=ctx.request_id, approval=approval, delay_minutes=approval.wait_minutes)  # fmt: skip
    verb = {ApprovalVote.APPROVE: "approved", ApprovalVote.REJECT: "rejected"}[decision]
    notify(
        approval.requested_by,
        f"{voter.name} {verb} your request #{approval.pk} ({approval.operation}); now {approval.status}.",
        approval.get_absolute_url(),
    )
    publish(approval)
    return VoteOutput(request_id=approval.pk, status=approval.status)


def _check_can_vote(approval: ApprovalRequest, voter) -> None:
    if voter.token is not None:
        raise PermissionDenied("Approvals are for people: a vote through an API token is refused.")
    if voter.user_id == approval.requested_by_id:
        raise PermissionDenied("You cannot vote on your own request.")
    if approval.status != ApprovalRequest.PENDING:
        raise VoteRefused(f"This request is already {approval.status}; its decision is final.")


def _decide(approval: ApprovalRequest, status: str) -> None:
    approval.status, approval.decided_at = status, timezone.now()
    approval.save(update_fields=["status", "decided_at"])
    if status in ApprovalRequest.NOT_RUN:
        request_not_run(approval)


def _requester_actor(approval: ApprovalRequest):
    """The requester through what they asked with: the job keeps it, and refuses to start once it is revoked."""
    from apps.accounts.actors import Actor

    return Actor.for_credential(approval.requested_by, approval.credential, approval.scopes)


def expire_if_due(approval: ApprovalRequest) -> bool:
    """Expiry is final: an expired request never runs and can't be voted on. A due request is expired by the
    console itself, through the gateway (`approvals.expire`, as the system)."""
    if approval.status != ApprovalRequest.PENDING or approval.expires_at > timezone.now():
        return False
    from apps.core.gateway import invoke

    outcome = invoke("approvals.expire", hooks.actors().system(), {"request_id": approval.pk}, "system")
    approval.refresh_from_db(fields=["status", "decided_at"])
    return outcome.result.expired


def expire_due() -> int:
    """Expire every pending request whose time ran out (the beat tick); how many."""
    due = ApprovalRequest.objects.filter(status=ApprovalRequest.PENDING, expires_at__lte=timezone.now())
    return sum(expire_if_due(approval) for approval in due)


class RequestRef(BaseModel):
    request_id: int = Field(description="The approval request.")


class ExpireOutput(BaseModel):
    expired: bool


@operation("approvals.expire", risk=Risk.WRITE, permission="approvals.approve_requests", exposed=False,
           target=request_target, approval=lambda p: p.request_id)  # fmt: skip
def expire(ctx: Context, params: RequestRef) -> ExpireOutput:
    """Expire a pending request whose time ran out (the console does it on its own: never one that is not due)."""
    with transaction.atomic():
        approval = ApprovalRequest.objects.select_for_update().filter(pk=params.request_id).first()
        if approval is None or approval.status != ApprovalRequest.PENDING or approval.expires_at > timezone.now():
            return ExpireOutput(expired=False)
        _decide(approval, ApprovalRequest.EXPIRED)
    notify(approval.requested_by, f"Your request #{approval.pk} ({approval.operation}) expired without a decision.",
           approval.get_absolute_url())  # fmt: skip
    publish(approval)
    return ExpireOutput(expired=True)


def withdraw_requests_of(user, credential: str, why: str) -> int:
    """The hooks.on_credential_revoked of approvals: withdraw the requests `user` made through `credential` (or one under it) that
    still wait for a decision; how many. Inside the revoking operation, which audits it. A break-glass review
    stays open: what it reviews already ran, and people still acknowledge it."""
    withdrawn = 0
    waiting = ApprovalRequest.objects.select_for_update().filter(
        hooks.revoked_references(credential), requested_by=user, status=ApprovalRequest.PENDING
    )
    for approval in waiting:
        _decide(approval, ApprovalRequest.WITHDRAWN)
        notify(user, f"Your request #{approval.pk} ({approval.operation}) was withdrawn: {why}", approval.get_absolute_url())
        publish(approval)
        withdrawn += 1
    return withdrawn


def publish(approval: ApprovalRequest) -> None:
    pending = ApprovalRequest.objects.filter(status__in=ApprovalRequest.OPEN).count()  # break-glass reviews wait for people too
    publish_template("approvals", "approvals/_live.html", {"approval": approval, "pending": pending})


# --- operations for people and agents to follow their requests -------------------------


class ApprovalStatusInput(BaseModel):
    request_id: int = Field(description="The id returned when the risky call went pending.")


class ApprovalInfo(BaseModel):
    request_id: int
    operation: str
    target: str
    status: str = Field(
        description="pending, approved, rejected, expired, drifted (what would run changed after the request: nothing ran), "
        "withdrawn (the agent that asked was revoked before a decision), or review / reviewed for a break-glass run."
    )
    approvals: int
    quorum: int
    requested_by: str
    created_at: datetime
    expires_at: datetime
    votes: list[dict] = Field(default_factory=list, description="Each vote: voter, decision, comment, time, the plan hash voted on.")
    plan: dict = Field(default_factory=dict, description="What the call will do, resolved when requested; approvers vote on it.")
    plan_hash: str = Field("", description="SHA-256 of the plan's canonical JSON (sorted keys, compact).")
    drift: list[str] = Field(default_factory=list, description="When drifted: approved (-) vs current (+) plan lines.")
    break_glass: bool = False
    job_id: str | None = None
    job_status: str | None = Field(None, description="queued, running, succeeded, failed or cancelled once approved.")
    job_result: dict | None = None
    job_error: str | None = None
    url: str


# The columns _info reads: a list loads only these (an agent's hot read: Django compiles and reads half the columns).
_INFO_FIELDS = ("operation", "target", "status", "quorum", "requested_by", "created_at", "expires_at", "plan", "plan_hash",
                "drifted_plan", "break_glass")  # fmt: skip


def _with_details(requests):
    """What _info reads of each request beyond its row (votes with their voters, jobs newest first),
    in one query each for any number of requests."""
    return requests.prefetch_related(
        Prefetch("votes", queryset=ApprovalVote.objects.select_related("voter")),
        Prefetch("jobs", queryset=Job.objects.order_by("-created_at")),
    )


def _info(approval: ApprovalRequest) -> ApprovalInfo:
    job = approval.job
    votes = [
        {"voter": v.voter.username, "decision": v.decision, "comment": v.comment, "at": v.created_at.isoformat(), "plan_hash": v.plan_hash}
        for v in approval.votes.all()
    ]
    return ApprovalInfo(
        request_id=approval.pk,
        operation=approval.operation,
        target=approval.target,
        status=approval.status,
        approvals=sum(1 for v in votes if v["decision"] == ApprovalVote.APPROVE),
        quorum=approval.quorum,
        requested_by=approval.requested_by.username,
        created_at=approval.created_at,
        expires_at=approval.expires_at,
        votes=votes,
        plan=approval.plan,
        plan_hash=approval.plan_hash,
        drift=[f"{sign} {line}" for sign, line in plans.drift(approval.plan, approval.drifted_plan)] if approval.drifted_plan else [],
        break_glass=approval.break_glass,
        job_id=str(job.pk) if job else None,
        job_status=job.status if job else None,
        job_result=job.result if job else None,
        job_error=(job.error or None) if job else None,
        url=settings.CONSOLE_BASE_URL.rstrip("/") + approval.get_absolute_url(),
    )


@operation("approvals.status", risk=Risk.READ, target=lambda p: f"request {p.request_id}")
def status(ctx: Context, params: ApprovalStatusInput) -> ApprovalInfo:
    """Follow one approval request you made: its status, the plan approvers vote on (and its hash), the votes
    and — once approved — the job's status and result. `drifted` means what would run changed: nothing ran."""
    approval = _with_details(ApprovalRequest.objects.filter(pk=params.request_id).select_related("requested_by")).first()
    may_see_all = ctx.actor.has_perm("approvals.approve_requests") or ctx.actor.is_system
    if approval is None or (approval.requested_by_id != ctx.actor.user_id and not may_see_all):
        raise ApprovalError(f"No approval request #{params.request_id} of yours.")
    expire_if_due(approval)
    return _info(approval)


class ListMineInput(BaseModel):
    status: str | None = Field(
        None, pattern="^(pending|approved|rejected|expired|drifted|withdrawn|review|reviewed)$", description="Only requests in this status."
    )
    limit: int = Field(20, ge=1, le=100)


class ApprovalList(BaseModel):
    requests: list[ApprovalInfo]


def _build_mine(user: int, status: str | None, limit: int):
    mine = ApprovalRequest.objects.filter(requested_by_id=user).only(*_INFO_FIELDS)
    return _with_details(mine.filter(status=status) if status else mine)[:limit]


# Agents poll this one ("is my request decided yet?"): its SQL is built once per shape.
_mine = PreparedQuery(_build_mine, values=("user", "status"))


@operation("approvals.list_mine", risk=Risk.READ)
def list_mine(ctx: Context, params: ListMineInput) -> ApprovalList:
    """List the approval requests you made, newest first."""
    mine = list(_mine(user=ctx.actor.user_id, status=params.status, limit=params.limit))
    for approval in mine:  # the requester is the caller, already at hand: no join to the user table
        approval.requested_by = ctx.actor.user
    return ApprovalList(requests=[_info(a) for a in mine])
