"""The one audit writer: every event goes through `record()`."""

from __future__ import annotations

import json
import logging

from django.db import connection, transaction
from django.utils import timezone

from .chain import GENESIS, compute_hash
from .models import AuditEvent
from .stream import flow_of, kick_streams

log = logging.getLogger(__name__)
# Any constant: the advisory lock that serialises appends to the chain on PostgreSQL.
CHAIN_LOCK_ID = 0x0A0D17


def record(
    *,
    operation: str,
    outcome: str,
    channel: str,
    actor=None,
    target: str = "",
    params: dict | None = None,
    error: str = "",
    duration_ms: float = 0.0,
    client_ip: str | None = None,
    request_id: str = "",
    approval_id: str = "",
    actor_name: str | None = None,
    correlation_id: str = "",
) -> AuditEvent:
    """Append one event to the chain.

    `actor` is an Actor (or None for an anonymous caller, e.g. a failed login,
    in which case `actor_name` says who it claimed to be).
    """
    user = getattr(actor, "user", None)
    token = getattr(actor, "token", None)
    event = AuditEvent(
        actor_id=getattr(user, "pk", None),
        actor=(actor.name if actor is not None and actor.is_authenticated else (actor_name or ""))[:150],
        token_id=getattr(token, "pk", None),
        token=str(token)[:120] if token is not None else "",
        channel=channel,
        operation=operation,
        app=operation.split(".", 1)[0],
        target=(target or "")[:300],
        # Normalised through JSON so the hash is computed on what the database returns.
        params=json.loads(json.dumps(params or {}, default=str)),
        outcome=outcome,
        error=(error or "")[:4000],
        duration_ms=round(float(duration_ms), 3),
        client_ip=client_ip or None,
        request_id=request_id[:64],
        approval_id=str(approval_id or "")[:64],
        correlation_id=(correlation_id or flow_of(approval_id, request_id))[:64],
    )
    # Every gateway call passes here, so this is plain SQL, without the ORM's per-query
    # overhead: on PostgreSQL one round trip takes the chain lock and reads the head
    # (migration 0003), then the insert; the lock is held until commit.
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT head_seq, head_hash FROM audit_chain_head(%s)", [CHAIN_LOCK_ID])
        else:  # SQLite: the IMMEDIATE transaction already holds the database write lock.
            cursor.execute(f"SELECT seq, hash FROM {TABLE} ORDER BY seq DESC LIMIT 1")  # noqa: S608 (names from model meta)
        last = cursor.fetchone()
        last = last if last and last[0] is not None else None
        event.seq, event.prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS)
        event.at = timezone.now()  # under the lock, so time order == chain order
        event.hash = compute_hash(event.prev_hash, event)
        cursor.execute(_insert_sql(), [f.get_db_prep_save(getattr(event, f.attname), connection) for f in _FIELDS])
        event.pk = cursor.fetchone()[0]
    event._state.adding = False
    transaction.on_commit(kick_streams, robust=True)
    return event


TABLE = AuditEvent._meta.db_table
_FIELDS = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]


def _insert_sql() -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in _FIELDS)
    placeholders = ", ".join(["%s"] * len(_FIELDS))
    return f"INSERT INTO {TABLE} ({columns}) VALUES ({placeholders}) RETURNING {quote('id')}"  # noqa: S608 (names from model meta)
