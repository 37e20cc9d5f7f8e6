"""Approval policies as operations, and the quorum rule.

A policy is a guard: saving or deleting one that makes any (operation, scope)
pair easier to run — approval no longer required, a smaller quorum, a longer
expiry, a shorter wait, fewer approvals from a group, a scope that no longer
covers what it did — is itself a risky call approved by someone else. Making a
policy stricter applies at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from pydantic import BaseModel, Field, field_validator

from apps.core import operations
from apps.core.errors import InvalidInput, OpsError
from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from .models import ApprovalPolicy, ApprovalVote

POLICY_FIELDS = (
    "operation", "scope", "requires_approval", "quorum", "expiry_hours", "wait_minutes", "group_quorum",
    "break_glass_admins", "break_glass_tokens",
)  # fmt: skip


# --- the quorum rule -----------------------------------------------------------------------


def quorum_reached(approval) -> bool:
    """Enough approvals from distinct people other than the requester: `quorum` in all, and
    for each group of `group_quorum` its count of approvers who are members — one person
    fills one group's seat only, so "1 sre + 1 security" takes two people."""
    votes = approval.votes.filter(decision=ApprovalVote.APPROVE).exclude(voter_id=approval.requested_by_id)
    groups_of = {v.voter_id: set(v.voter.groups.values_list("name", flat=True)) for v in votes.select_related("voter")}
    if len(groups_of) < approval.quorum:
        return False
    seats = [group for group, count in sorted((approval.group_quorum or {}).items()) for _ in range(int(count))]
    return _seats_filled(seats, groups_of)


def _seats_filled(seats: list[str], groups_of: dict[int, set[str]]) -> bool:
    """A matching of seats to distinct voters (Kuhn's augmenting paths; a handful of seats)."""
    seat_of: dict[int, int] = {}

    def place(seat: int, tried: set[int]) -> bool:
        for voter, groups in groups_of.items():
            if seats[seat] in groups and voter not in tried:
                tried.add(voter)
                if voter not in seat_of or place(seat_of[voter], tried):
                    seat_of[voter] = seat
                    return True
        return False

    return all(place(seat, set()) for seat in range(len(seats)))


# --- what "weaker" means -------------------------------------------------------------------


@dataclass(frozen=True)
class Guard:
    """The approval rule that applies to one (operation, scope) pair."""

    requires_approval: bool = True
    quorum: int = 1
    expiry_hours: int = 0
    wait_minutes: int = 0
    group_quorum: dict = field(default_factory=dict)
    break_glass_admins: bool = True
    break_glass_tokens: bool = False


def _effective(rows: list[dict], op: str, scope: str, guard: bool = False) -> Guard:
    """The policy resolution of services.policy_for, over rows in memory (to compare before and after).
    A guard operation needs approval whatever its row says (the gateway's rule), so for it the row's quorum,
    expiry, wait and groups still bind: weakening them is weakening, `requires_approval: false` or not."""
    matching = [r for r in rows if r["operation"] in (op, "*") and r["scope"] in (scope, "")]
    if not matching:
        return Guard(expiry_hours=settings.APPROVAL_DEFAULT_EXPIRY_HOURS)
    r = min(matching, key=lambda r: (r["operation"] == "*", r["scope"] == ""))
    return Guard(r["requires_approval"] or guard, max(1, r["quorum"]), r["expiry_hours"], r["wait_minutes"],
                 dict(r["group_quorum"] or {}), r["break_glass_admins"], r["break_glass_tokens"])  # fmt: skip


def weakened(before: Guard, after: Guard) -> list[str]:
    """How `after` is easier to pass than `before` (empty: not weaker)."""
    if not before.requires_approval:
        return []
    if not after.requires_approval:
        return ["approval no longer required"]
    why = []
    if after.quorum < before.quorum:
        why.append(f"quorum {before.quorum} → {after.quorum}")
    if after.expiry_hours > before.expiry_hours:
        why.append(f"expiry {before.expiry_hours} h → {after.expiry_hours} h")
    if after.wait_minutes < before.wait_minutes:
        why.append(f"wait {before.wait_minutes} min → {after.wait_minutes} min")
    for group, count in sorted(before.group_quorum.items()):
        if int(after.group_quorum.get(group, 0)) < int(count):
            why.append(f"approvals from {group} {count} → {after.group_quorum.get(group, 0)}")
    for who in ("admins", "tokens"):
        if getattr(after, f"break_glass_{who}") and not getattr(before, f"break_glass_{who}"):
            why.append(f"break-glass allowed for {who}")
    return why


def _rows() -> dict[int, dict]:
    return {p["id"]: p for p in ApprovalPolicy.objects.values("id", *POLICY_FIELDS)}


def _weakenings(before: list[dict], after: list[dict]) -> list[dict]:
    """Every (operation, scope) pair that any policy names, plus every risky operation, whose rule gets weaker."""
    ops = {r["operation"] for r in before + after} | {op.name for op in operations.all_operations() if op.risk is Risk.RISKY}
    scopes = {r["scope"] for r in before + after} | {""}
    out = []
    for op in sorted(ops):
        guard = getattr(operations.find(op), "guard", False)
        # An operation only some of whose calls lower a guard (a restore over protected objects) is read both ways.
        readings = (False, True) if callable(guard) else (guard,)
        for scope in sorted(scopes):
            for as_guard in readings:
                old, new = _effective(before, op, scope, as_guard), _effective(after, op, scope, as_guard)
                why = weakened(old, new)
                if why:
                    out.append({"operation": op, "scope": scope, "before": asdict(old), "after": asdict(new), "why": why})
                    break
    return out


# --- operations ----------------------------------------------------------------------------


class SavePolicyInput(BaseModel):
    id: int | None = Field(None, description="The policy to change; none creates one.")
    operation: str = Field(description='A risky operation\'s name, or "*" for every risky operation.')
    scope: str = Field("", max_length=200, description='e.g. "environment:production"; empty = any scope.')
    requires_approval: bool = True
    quorum: int = Field(1, ge=1, le=10)
    expiry_hours: int = Field(24, ge=1, le=24 * 30)
    wait_minutes: int = Field(0, ge=0, le=7 * 24 * 60, description="Delay between approval and execution.")
    group_quorum: dict[str, int] = Field(
        default_factory=dict, description='Approvals needed from members of each group, e.g. {"sre": 1, "security": 1}.'
    )
    break_glass_admins: bool = Field(True, description="An admin may run one call without approval, with a reason.")
    break_glass_tokens: bool = Field(False, description="Break-glass is allowed through an admin-scoped API token too.")

    @field_validator("operation")
    @classmethod
    def _risky_operation(cls, value: str) -> str:
        if value != "*":
            op = {o.name: o for o in operations.all_operations()}.get(value)
            if op is None or op.risk is not Risk.RISKY:
                raise ValueError(f'{value!r} is not a risky operation (or "*")')
        return value

    @field_validator("group_quorum")
    @classmethod
    def _groups(cls, value: dict[str, int]) -> dict[str, int]:
        value = {g.strip(): n for g, n in value.items() if n}
        if any(n < 0 or n > 10 for n in value.values()):
            raise ValueError("each group needs between 0 and 10 approvals")
        unknown = sorted(set(value) - set(Group.objects.filter(name__in=value).values_list("name", flat=True)))
        if unknown:
            raise ValueError(f"no such group: {', '.join(unknown)}")
        return value


class DeletePolicyInput(BaseModel):
    id: int


class PolicyChange(BaseModel):
    id: int | None = Field(description="The policy saved; none once deleted.")
    policy: str


def _policy_row(params: SavePolicyInput) -> dict:
    return params.model_dump(include=set(POLICY_FIELDS))


def _save_change(params: SavePolicyInput) -> tuple[dict | None, dict, list[dict]]:
    rows = _rows()
    old = rows.get(params.id) if params.id is not None else None
    if params.id is not None and old is None:
        raise InvalidInput({"id": f"There is no approval policy #{params.id}."})
    new = {**_policy_row(params), "id": params.id}
    after = [r for r in rows.values() if r["id"] != params.id] + [new]
    return old, new, _weakenings(list(rows.values()), after)


def _delete_change(params: DeletePolicyInput) -> tuple[dict, list[dict]]:
    rows = _rows()
    old = rows.get(params.id)
    if old is None:
        raise InvalidInput({"id": f"There is no approval policy #{params.id}."})
    return old, _weakenings(list(rows.values()), [r for r in rows.values() if r["id"] != params.id])


def _scope_if_weaker(old: dict | None, new: dict | None, weaker: list[dict]) -> str | None:
    """A weakening is approved under the policy's scope (the old one when the scope changes)."""
    if not weaker:
        return None
    return (old or new)["scope"]


def _save_scope(params: SavePolicyInput) -> str | None:
    try:
        old, new, weaker = _save_change(params)
    except InvalidInput:
        return None  # the operation itself says so, with the field
    return _scope_if_weaker(old, new, weaker)


def _delete_scope(params: DeletePolicyInput) -> str | None:
    try:
        old, weaker = _delete_change(params)
    except InvalidInput:
        return None
    return _scope_if_weaker(old, None, weaker)


def _plan(old: dict | None, new: dict | None, weaker: list[dict]) -> dict:
    # How it lowers a guard, as reasons: which other rows happen to name which scopes is not part of
    # the change, so an unrelated policy row coming or going does not make an approved change drift.
    return {"policy": {"before": old, "after": new}, "lowers": sorted({why for w in weaker for why in w["why"]})}


def plan_save_policy(ctx: Context, params: SavePolicyInput) -> dict:
    return _plan(*_save_change(params))


def plan_delete_policy(ctx: Context, params: DeletePolicyInput) -> dict:
    old, weaker = _delete_change(params)
    return _plan(old, None, weaker)


def _label(row: dict) -> str:
    return f"{row['operation']} {row['scope'] or '(any scope)'}"


@operation("approvals.save_policy", risk=Risk.RISKY, permission="approvals.manage_policies", guard=True,
           approval_scope=_save_scope, planner=plan_save_policy, target=_label)  # fmt: skip
def save_policy(ctx: Context, params: SavePolicyInput) -> PolicyChange:
    """Create or change an approval policy (quorum, expiry, wait, approvals per group, break-glass). A stricter policy
    applies at once; one that lets any operation through more easily (approval off, smaller quorum, longer expiry,
    shorter wait, fewer approvals from a group, break-glass newly allowed, narrower scope) waits for someone else's
    approval."""
    values = _policy_row(params)
    with transaction.atomic():
        clash = ApprovalPolicy.objects.filter(operation=params.operation, scope=params.scope).exclude(pk=params.id)
        if clash.exists():
            raise InvalidInput({"scope": f"A policy for {_label(values)} exists already; edit that one."})
        if params.id is None:
            policy = ApprovalPolicy.objects.create(**values)
        elif not ApprovalPolicy.objects.filter(pk=params.id).update(**values):
            raise OpsError(f"Approval policy #{params.id} was deleted meanwhile.")
        else:
            policy = ApprovalPolicy.objects.get(pk=params.id)
    return PolicyChange(id=policy.pk, policy=str(policy))


@operation("approvals.delete_policy", risk=Risk.RISKY, permission="approvals.manage_policies", guard=True,
           approval_scope=_delete_scope, planner=plan_delete_policy, target=lambda p: f"policy {p.id}")  # fmt: skip
def delete_policy(ctx: Context, params: DeletePolicyInput) -> PolicyChange:
    """Delete an approval policy. When that lets any operation through more easily, it waits for someone else's approval."""
    policy = ApprovalPolicy.objects.filter(pk=params.id).first()
    if policy is None:
        raise InvalidInput({"id": f"There is no approval policy #{params.id}."})
    label = str(policy)
    policy.delete()
    return PolicyChange(id=None, policy=label)
