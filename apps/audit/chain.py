"""An audit event's values as the chain links them, and the links themselves.

New events are linked with the keyed HMAC of opsconsole_audit_verify.chain over every
field of the row (whatever fields the model has); events written before the keyed chain
(key_id "") keep their plain SHA-256 link over the fixed field list of that time."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from django.db import models

from opsconsole_audit_verify.chain import GENESIS, LEGACY, UNLINKED, link

__all__ = ["GENESIS", "LEGACY", "expected_link", "legacy_hash", "row_values", "stamp"]

LEGACY_FIELDS = (
    "seq", "at", "actor_id", "actor", "token_id", "token", "channel", "operation", "app",
    "target", "params", "outcome", "error", "duration_ms", "client_ip", "request_id", "approval_id",
)  # fmt: skip


def stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_value(field: models.Field, value):
    """The value as the database gives it back, in JSON: what both the writer and any verifier see."""
    if value is None:
        return None
    if isinstance(field, models.DateTimeField):
        return stamp(value)
    if isinstance(field, models.FloatField):
        return round(float(value), 3)
    if isinstance(field, models.JSONField):
        return json.loads(json.dumps(value, default=str))
    return value if isinstance(value, (int, str, bool)) else str(value)


def row_values(event) -> dict:
    """Every linked field of the row (all concrete fields but id and the two hashes)."""
    return {f.attname: _json_value(f, getattr(event, f.attname)) for f in type(event)._meta.concrete_fields if f.attname not in UNLINKED}


def legacy_hash(prev_hash: str, event) -> str:
    def value(v):
        if isinstance(v, datetime):
            return stamp(v)
        return repr(round(v, 3)) if isinstance(v, float) else v

    body = {name: value(getattr(event, name)) for name in LEGACY_FIELDS}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256((prev_hash + text).encode()).hexdigest()


def expected_link(ring: dict[str, bytes], prev_hash: str, event) -> str | None:
    """The link this event must carry, or None when its key is not in the ring."""
    if event.key_id == LEGACY:
        return legacy_hash(prev_hash, event)
    key = ring.get(event.key_id)
    return None if key is None else link(key, prev_hash, row_values(event))
