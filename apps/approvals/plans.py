"""Plans: what a risky call will do, in its canonical form, its hash, and the line diff people read.

A planner (declared next to its operation) returns a JSON-able dict. Two keys
have a meaning for the approval page: `before` / `after` (what changes, shown
as a line diff) and `links` ({label: path} to the thing acted on); `summary`
is one sentence; every other key is shown as "what will happen" lines.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import json

from django.conf import settings

SHOWN_APART = ("before", "after", "links", "summary")


def canonical(plan: dict) -> str:
    """Sorted keys, compact separators: the same plan always gives the same text (and hash)."""
    return json.dumps(plan, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def plan_hash(plan: dict) -> str:
    return hashlib.sha256(canonical(plan).encode()).hexdigest()


def compute(op, ctx, params) -> dict:
    """The operation's plan now, normalised to plain JSON types (what is stored is what is hashed)."""
    return json.loads(canonical(op.planner(ctx, params)))


def fingerprint(secret: str) -> str:
    """Stands for a secret value in a plan: a changed secret changes the plan, the value never shows."""
    digest = hmac.new(settings.SECRET_KEY.encode(), secret.encode(), hashlib.sha256).hexdigest()
    return f"•••• (fingerprint {digest[:8]})"


def lines(value, prefix: str = "") -> list[str]:
    """A JSON value as `path: value` lines, one per leaf, in a stable order (diffable, readable)."""
    if isinstance(value, dict):
        if not value:
            return [f"{prefix}: {{}}"] if prefix else []
        out: list[str] = []
        for key in sorted(value):
            out += lines(value[key], f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(value, list):
        if not value:
            return [f"{prefix}: []"]
        out = []
        for i, item in enumerate(value):
            out += lines(item, f"{prefix}[{i}]")
        return out
    return [f"{prefix}: {json.dumps(value, ensure_ascii=False)}"]


def diff(before, after) -> list[tuple[str, str]]:
    """(sign, line) pairs: "-" only before, "+" only after, " " unchanged; in reading order."""
    out = []
    for line in difflib.ndiff(lines(before), lines(after)):
        if line[:1] in ("-", "+", " "):
            out.append((line[:1], line[2:]))
    return out


def changes(plan: dict) -> list[tuple[str, str]]:
    """The plan's own before → after diff (a deploy against the serving revision, a guard's change)."""
    if "before" not in plan and "after" not in plan:
        return []
    return diff(plan.get("before") or {}, plan.get("after") or {})


def details(plan: dict) -> list[str]:
    return lines({k: v for k, v in plan.items() if k not in SHOWN_APART})


def drift(approved: dict, current: dict) -> list[tuple[str, str]]:
    """Only the lines that differ between the approved plan and the plan now."""
    return [(sign, line) for sign, line in diff(approved, current) if sign != " "]
