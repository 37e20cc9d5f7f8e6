"""Break-glass: an admin runs one risky call without approval when production is on fire.

It is loud by design: a reason is mandatory, an `approvals.break_glass` audit
event names who, what and why, every approver is notified at once, and a
review item stays open in the approvals queue until two other people
acknowledge it. Each scope's policy says whether admins (default yes) and
admin-scoped API tokens (default no) may break glass.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from pydantic import BaseModel

from apps.audit.writer import record
from apps.core.errors import InvalidInput, PermissionDenied
from apps.core.jobs import Context
from apps.core.notify import notify
from apps.core.operations import Risk, operation
from apps.core.redact import redact_text

from .models import ApprovalRequest, ApprovalVote
from .services import Policy, VoteInput, VoteOutput, VoteRefused, publish, request_approval, request_target


def allowed(actor, policy: Policy) -> bool:
    """Whether `actor` may break glass under `policy` (the web form shows the path only then)."""
    if not actor.has_perm("approvals.break_glass"):
        return False
    return policy.break_glass_tokens if actor.token is not None else policy.break_glass_admins


def break_glass(op, params: BaseModel, actor, channel: str, *, scope: str, policy: Policy, reason: str) -> ApprovalRequest:
    """Record the break-glass review (with the plan of what runs) and raise the alarm; the caller then runs it."""
    if op.lowers_guard(params):  # break-glass runs the risky thing itself; lowering a guard for good always takes another person
        raise PermissionDenied(f"{op.name} lowers a guard: break-glass does not apply, another person must approve it.")
    if not reason.strip():
        raise InvalidInput({"reason": "Breaking glass needs a reason: say what is on fire."})
    if not allowed(actor, policy):
        via = "an API token" if actor.token is not None else actor.name
        raise PermissionDenied(f"Break-glass is not allowed for {via} in scope {scope or '(any)'}: ask an approver.")
    review = request_approval(
        op, params, actor, channel, scope=scope, policy=policy, reason=reason,
        break_glass=True, status=ApprovalRequest.REVIEW, quorum=ApprovalRequest.REVIEW_ACKS,
        # A call that runs now is executed now; a job claims its review as it starts, like an approval.
        executed_at=None if op.long else timezone.now(),
    )  # fmt: skip
    target = op.target_of(params)
    record(
        operation="approvals.break_glass", outcome="ok", channel=channel, actor=actor, target=f"{op.name} {target}".strip(),
        params={"reason": redact_text(reason[:2000]), "scope": scope, "plan_hash": review.plan_hash}, approval_id=str(review.pk),
    )  # fmt: skip
    for approver in approvers():
        if approver.pk != actor.user_id:
            notify(approver, f"BREAK-GLASS: {actor.name} ran {op.name} {target} without approval: {reason}", review.get_absolute_url())
    return review


def approvers():
    """Every active person who may approve (approvers hold the permission through their role's group)."""
    has_perm = Q(groups__permissions__codename="approve_requests", groups__permissions__content_type__app_label="approvals")
    return get_user_model().objects.filter(has_perm | Q(is_superuser=True), is_active=True).distinct()


def acknowledge(approval_id: int, actor, comment: str = "", *, client_ip=None, request_id="") -> ApprovalRequest:
    """One person acknowledges a break-glass run, through the gateway (`approvals.acknowledge`)."""
    from apps.core.gateway import invoke

    params = {"request_id": approval_id, "comment": comment}
    invoke("approvals.acknowledge", actor, params, "web", client_ip=client_ip, request_id=request_id)
    return ApprovalRequest.objects.get(pk=approval_id)


# Approvers and admins acknowledge (checked below: the gateway checks one permission, every role's floor);
# people only, in the web UI.
@operation("approvals.acknowledge", risk=Risk.WRITE, permission="core.run_read_ops", idempotent=False, exposed=False,
           target=request_target, approval=lambda p: p.request_id)  # fmt: skip
def acknowledge_review(ctx: Context, params: VoteInput) -> VoteOutput:
    """Acknowledge another person's break-glass run; the second acknowledgement closes its review."""
    actor = ctx.actor
    with transaction.atomic():
        review = ApprovalRequest.objects.select_for_update().filter(pk=params.request_id, break_glass=True).first()
        _check_can_acknowledge(review, actor)
        try:
            with transaction.atomic():
                ApprovalVote.objects.create(
                    request=review, voter=actor.user, decision=ApprovalVote.ACKNOWLEDGE,
                    comment=params.comment, plan_hash=review.plan_hash,
                )  # fmt: skip
        except IntegrityError:
            raise VoteRefused("You have already acknowledged this break-glass run.") from None
        if review.votes.filter(decision=ApprovalVote.ACKNOWLEDGE).count() >= ApprovalRequest.REVIEW_ACKS:
            review.status, review.decided_at = ApprovalRequest.REVIEWED, timezone.now()
            review.save(update_fields=["status", "decided_at"])
    publish(review)
    return VoteOutput(request_id=review.pk, status=review.status)


def _check_can_acknowledge(review: ApprovalRequest | None, actor) -> None:
    if review is None:
        raise VoteRefused("No such break-glass review.")
    if actor.token is not None:
        raise PermissionDenied("Reviews are for people: an acknowledgement through an API token is refused.")
    if not (actor.has_perm("approvals.approve_requests") or actor.has_perm("approvals.break_glass")):
        raise PermissionDenied(f"{actor.name} is neither an approver nor an admin.")
    if actor.user_id == review.requested_by_id:
        raise PermissionDenied("You broke the glass: two other people must acknowledge it.")
    if review.status != ApprovalRequest.REVIEW:
        raise VoteRefused(f"This review is already {review.status}.")
