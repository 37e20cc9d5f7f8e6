"""Canonical form and hashing of audit events."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

GENESIS = "0" * 64
HASHED_FIELDS = (
    "seq", "at", "actor_id", "actor", "token_id", "token", "channel", "operation", "app",
    "target", "params", "outcome", "error", "duration_ms", "client_ip", "request_id", "approval_id",
)  # fmt: skip


def _canonical_value(value):
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, float):
        return repr(round(value, 3))
    return value


def canonical_json(event) -> str:
    body = {name: _canonical_value(getattr(event, name)) for name in HASHED_FIELDS}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def compute_hash(prev_hash: str, event) -> str:
    return hashlib.sha256((prev_hash + canonical_json(event)).encode()).hexdigest()
