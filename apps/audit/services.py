"""Retention of the audit log: pruning old events behind a signed anchor, and the legal
hold that stops it. Both are risky operations (approved, audited); their planners say
exactly which events would go or what the hold changes."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min
from django.utils import timezone
from pydantic import BaseModel, Field

from apps.core.errors import InvalidInput, OperationFailed
from apps.core.operations import Risk, operation

from . import anchors
from .models import AuditEvent, AuditSink, LegalHold, Prune
from .verify import verify_chain

PERMISSION = "audit.manage_retention"


class RetentionError(OperationFailed):
    """Pruning is not allowed now; the message says why."""


class RetentionInput(BaseModel):
    pass


class RetentionStatus(BaseModel):
    retention_days: int
    legal_hold: bool
    legal_hold_reason: str
    first_seq: int | None
    prunable_through_seq: int | None = Field(
        description="The last event audit.prune may remove now (older than the retention age, anchored, and received by every "
        "enabled SIEM sink)."
    )
    newest_anchor_seq: int | None


class PruneInput(BaseModel):
    through_seq: int = Field(ge=1, description="Remove every event up to and including this one (see audit.retention).")


class PruneOutput(BaseModel):
    removed: int
    first_seq_kept: int


class LegalHoldInput(BaseModel):
    active: bool
    reason: str = Field(min_length=3, max_length=500, description="Why (a case or matter reference).")


class LegalHoldOutput(BaseModel):
    active: bool


def _hold() -> LegalHold | None:
    return LegalHold.current()


def _anchored_seq() -> int | None:
    """The seq of the newest anchor, once the chain verifies against it (pruning must never outrun it)."""
    result = verify_chain()
    if not result.ok:
        raise RetentionError(f"The audit chain does not verify ({result.problem}): nothing may be pruned.")
    entry = anchors.newest_anchor()
    return entry["anchor"]["seq"] if entry else None


def _prunable_through(anchored: int | None) -> int | None:
    days = settings.AUDIT_RETENTION_DAYS
    if not days or anchored is None:
        return None
    cutoff = timezone.now() - timedelta(days=days)
    old = AuditEvent.objects.filter(at__lt=cutoff, seq__lte=anchored).order_by("-seq").values_list("seq", flat=True).first()
    if old is None:
        return None
    head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    # An enabled SIEM sink that is behind (down, backing off) still gets everything it has not received.
    streamed = AuditSink.objects.filter(enabled=True).aggregate(cursor=Min("cursor"))["cursor"]
    return min(old, head - 1, *([] if streamed is None else [streamed])) or None  # the head itself always stays


@operation("audit.retention", risk=Risk.READ, permission=PERMISSION)
def retention(ctx, params: RetentionInput) -> RetentionStatus:
    """The audit log's retention: the configured age, the legal hold, and how far audit.prune may go now."""
    anchored = _anchored_seq()
    hold = _hold()
    return RetentionStatus(
        retention_days=settings.AUDIT_RETENTION_DAYS,
        legal_hold=bool(hold and hold.active),
        legal_hold_reason=hold.reason if hold and hold.active else "",
        first_seq=AuditEvent.objects.order_by("seq").values_list("seq", flat=True).first(),
        prunable_through_seq=_prunable_through(anchored),
        newest_anchor_seq=anchored,
    )


def plan_prune(ctx, params: PruneInput) -> dict:
    hold = _hold()
    if hold and hold.active:
        raise RetentionError(f"A legal hold is active ({hold.reason}): nothing may be pruned until it is lifted.")
    limit = _prunable_through(_anchored_seq())
    if limit is None or params.through_seq > limit:
        allowed = f"at most #{limit}" if limit else "nothing yet"
        rule = f"Only events older than {settings.AUDIT_RETENTION_DAYS} days, anchored and received by every enabled SIEM sink may go"
        raise InvalidInput({"through_seq": f"{rule}: {allowed}."})
    first = AuditEvent.objects.order_by("seq").values_list("seq", flat=True).first()
    if first is None or params.through_seq < first:
        raise InvalidInput({"through_seq": f"Events up to #{params.through_seq} are already pruned."})
    last = AuditEvent.objects.get(seq=params.through_seq)
    return {
        "remove": {"first_seq": first, "through_seq": last.seq, "events": last.seq - first + 1, "newest_removed_at": last.at.isoformat()},
        "chain_restarts_from": {"seq": last.seq, "hash": last.hash},
        "retention_days": settings.AUDIT_RETENTION_DAYS,
    }


@operation("audit.prune", risk=Risk.RISKY, permission=PERMISSION, target=lambda p: f"audit events ..#{p.through_seq}", planner=plan_prune)
def prune(ctx, params: PruneInput) -> PruneOutput:
    """Remove audit events older than the retention age, up to `through_seq`. A signed anchor of
    the last removed event is stored first; the chain verifies from it. Refused under a legal hold."""
    plan = plan_prune(ctx, params)
    last = AuditEvent.objects.get(seq=params.through_seq)
    anchor = anchors.signed(
        {"kind": "prune", "seq": last.seq, "hash": last.hash, "key_id": last.key_id, "at": timezone.now().isoformat(), "reason": "prune"}
    )
    with transaction.atomic(), connection.cursor() as cursor:
        Prune.objects.create(through_seq=last.seq, anchor=anchor, at=timezone.now(), by=ctx.actor.name)
        if connection.vendor == "postgresql":  # the one DELETE the append-only trigger lets through (migration 0004)
            cursor.execute("SELECT audit_prune(%s)", [last.seq])
            removed = cursor.fetchone()[0]
        else:
            cursor.execute(f"DELETE FROM {AuditEvent._meta.db_table} WHERE seq <= %s", [last.seq])  # noqa: S608
            removed = cursor.rowcount
    return PruneOutput(removed=removed, first_seq_kept=plan["remove"]["through_seq"] + 1)


def plan_legal_hold(ctx, params: LegalHoldInput) -> dict:
    hold = _hold()
    return {"legal_hold": {"before": bool(hold and hold.active), "after": params.active}, "reason": params.reason}


def _lift_scope(params: LegalHoldInput) -> str | None:
    """Lifting a hold that holds lowers a guard (pruning becomes possible): someone else approves it, whatever the
    policy rows say. Placing one (or keeping it as it is) raises or keeps the guard: at once."""
    hold = _hold()
    return "" if hold and hold.active and not params.active else None


@operation("audit.legal_hold", risk=Risk.RISKY, permission=PERMISSION, target=lambda p: "audit retention", planner=plan_legal_hold,
           guard=True, approval_scope=_lift_scope)  # fmt: skip
def legal_hold(ctx, params: LegalHoldInput) -> LegalHoldOutput:
    """Place (active=true) or lift (active=false) a legal hold on the audit log: while it holds, nothing is pruned.
    Placing it is immediate; lifting it waits for someone else's approval."""
    LegalHold.objects.create(active=params.active, reason=params.reason, at=timezone.now(), by=ctx.actor.name)
    return LegalHoldOutput(active=params.active)


# The SIEM sink operations (audit.save_sink, ...) live in sinks.py: importing it registers them.
from . import sinks  # noqa: E402, F401
