"""The one audit writer: every event goes through `record()`.

Appending links the event to the chain head with the chain key, which only this process
holds (not the database), so the head must come back to Python before the insert. On
PostgreSQL, outside a caller's transaction, concurrent callers in one process are
grouped: the first becomes the leader and appends everything queued so far as one batch
in two round trips — (BEGIN, chain lock, head), then (multi-row INSERT, COMMIT, durability
barrier) pipelined — while the others wait; each caller returns only once its row is
durable. The append transaction commits asynchronously so the chain lock is released
without waiting for the WAL flush; the barrier right after it (a transaction that writes
WAL and commits synchronously) returns only when the WAL is flushed through the append's
commit, and concurrent barriers share one flush. Inside a caller's transaction (and on SQLite) the
event is linked and inserted in that transaction and commits with it.

With AUDIT_APPENDER_SOCKET set, an append outside a transaction is handed to the appender
process instead (apps/audit/appender.py), which batches every process's events; a writer
that cannot reach it appends itself.
"""

from __future__ import annotations

import json
import os
import threading
from functools import cache

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from opsconsole_audit_verify.chain import GENESIS, KEY_CHANGE, link

from .appender_client import AppenderClient
from .chain import row_values, stamp
from .keys import current_chain_key
from .models import AuditEvent
from .stream import flow_of, kick_streams

# Any constant: the advisory lock that serialises appends to the chain on PostgreSQL.
CHAIN_LOCK_ID = 0x0A0D17
# A transaction that writes a WAL record (a transactional logical message, callable by any
# role, at any wal_level) and so commits synchronously: its flush covers every commit before it.
# (Assigning an xid alone writes no WAL, and PostgreSQL then skips the flush.)
DURABILITY_BARRIER = "SELECT pg_logical_emit_message(true, 'opsconsole-audit', '')"
# Bounds one statement's size; a longer queue becomes the next batch.
MAX_BATCH = 500
# How long a writer may sit on the chain lock between two statements before PostgreSQL ends its
# transaction (the lock is held over one client round trip; this is many orders above it).
LOCK_HOLD_LIMIT_MS = 5000

TABLE = AuditEvent._meta.db_table
# The time source of new events (a test travels in time through it).
clock = timezone.now
_FIELDS = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
# The fields only known under the chain lock, and their positions in an insert's parameters.
_PLACED = {"seq", "at", "key_id", "prev_hash", "hash"}
_PLACED_AT = [(i, f) for i, f in enumerate(_FIELDS) if f.attname in _PLACED]


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
    """Append one event to the chain; it is committed (and durable) when this returns.

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
        # Normalised through JSON so the link is computed on what the database returns.
        params=json.loads(json.dumps(params or {}, default=str)),
        outcome=outcome,
        error=(error or "")[:4000],
        duration_ms=round(float(duration_ms), 3),
        client_ip=client_ip or None,
        request_id=request_id[:64],
        approval_id=str(approval_id or "")[:64],
        correlation_id=(correlation_id or flow_of(approval_id, request_id))[:64],
    )
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        if not (settings.AUDIT_APPENDER_SOCKET and _appender.append(event)):
            _group.append(_Row(event))
    else:
        _append_in_transaction([_Row(event)])
    event._state.adding = False
    transaction.on_commit(kick_streams, robust=True)
    every = settings.AUDIT_ANCHOR_EVERY_EVENTS
    if every and event.seq % every == 0:
        from .tasks import anchor

        transaction.on_commit(anchor.delay)
    return event


class _Row:
    """An event with all that does not depend on the chain head computed before the lock is
    taken (its linked values and its database parameters), so the lock is held for little work."""

    __slots__ = ("_params", "event", "values")

    def __init__(self, event: AuditEvent):
        self.event = event
        self.values = row_values(event)
        self._params = [None if f.attname in _PLACED else f.get_db_prep_save(getattr(event, f.attname), connection) for f in _FIELDS]

    def place(self, seq: int, at, key_id: str, prev_hash: str, hash_: str) -> None:
        event = self.event
        event.seq, event.at, event.key_id, event.prev_hash, event.hash = seq, at, key_id, prev_hash, hash_

    @property
    def params(self) -> list:
        """The row's INSERT parameters, as linked."""
        for i, f in _PLACED_AT:
            self._params[i] = f.get_db_prep_save(getattr(self.event, f.attname), connection)
        return self._params

    def as_json(self) -> str:
        """The row as linked, in JSON (what the database is to store: what the link was computed over)."""
        return json.dumps({**self.values, "prev_hash": self.event.prev_hash, "hash": self.event.hash}, separators=(",", ":"))

    @property
    def pk(self) -> int:
        return self.event.pk

    @pk.setter
    def pk(self, pk: int) -> None:
        self.event.pk = pk


def _link(rows: list, head: tuple | None) -> list:
    """Number, time-stamp and link `rows` (each a _Row, or anything with its `values` and `place`)
    after `head` (seq, hash, key id); a change of key (or the switch from the legacy chain) is
    recorded first, as its own event."""
    key_id, key = current_chain_key()
    seq, prev_hash, prev_key = head if head else (0, GENESIS, key_id)
    if prev_key != key_id:
        params = {"from": prev_key or "sha256", "to": key_id}
        rows = [_Row(AuditEvent(operation=KEY_CHANGE, app="audit", channel="system", outcome="ok", params=params)), *rows]
    now = clock()  # under the lock, so time order == chain order
    at = stamp(now)
    for row in rows:
        seq += 1
        row.values.update(seq=seq, at=at, key_id=key_id)
        hash_ = link(key, prev_hash, row.values)
        row.place(seq, now, key_id, prev_hash, hash_)
        prev_hash = hash_
    return rows


def _head(cursor) -> tuple | None:
    if connection.vendor == "postgresql":
        # One round trip: the advisory lock (held until commit) and the head read after it.
        cursor.execute("SELECT head_seq, head_hash, head_key_id FROM audit_chain_head(%s)", [CHAIN_LOCK_ID])
    else:  # SQLite: the IMMEDIATE transaction already holds the database write lock.
        cursor.execute(f"SELECT seq, hash, key_id FROM {TABLE} ORDER BY seq DESC LIMIT 1")  # noqa: S608 (names from model meta)
    row = cursor.fetchone()
    if row and row[0] is not None:
        return row
    from .models import Prune  # a log pruned to nothing continues from its prune anchor

    prune = Prune.objects.first()
    return (prune.anchor["anchor"]["seq"], prune.anchor["anchor"]["hash"], prune.anchor["anchor"]["key_id"]) if prune else None


@cache
def _insert_sql(count: int) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in _FIELDS)
    row = "(" + ", ".join(["%s"] * len(_FIELDS)) + ")"
    return f"INSERT INTO {TABLE} ({columns}) VALUES {', '.join([row] * count)} RETURNING {quote('id')}"  # noqa: S608


def _insert(cursor, rows: list[_Row]) -> None:
    """One multi-row INSERT of the linked batch (the statement an outbox insert would join)."""
    cursor.execute(_insert_sql(len(rows)), [value for row in rows for value in row.params])


def _set_ids(cursor, rows: list[_Row]) -> None:
    for row, (pk,) in zip(rows, cursor.fetchall(), strict=True):
        row.pk = pk


def _append_in_transaction(rows: list[_Row]) -> None:
    # No savepoint: a caller's transaction whose audit row failed must not commit anyway.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        linked = _link(rows, _head(cursor))
        _insert(cursor, linked)
        _set_ids(cursor, linked)


def _append_unless_appended(event: AuditEvent) -> None:
    """Append `event` unless the appender committed it (its append key is in the chain): under
    the chain lock, so an append of the appender still in flight has ended either way, and the
    key is unique, so one that starts later cannot add it a second time."""
    with transaction.atomic(), connection.cursor() as cursor:
        head = _head(cursor)
        cursor.execute(f"SELECT id, seq, at, key_id, prev_hash, hash FROM {TABLE} WHERE append_key = %s", [event.append_key])  # noqa: S608
        found = cursor.fetchone()
        if found is None:
            linked = _link([_Row(event)], head)
            _insert(cursor, linked)
            _set_ids(cursor, linked)
            return
        event.pk, event.seq, event.at, event.key_id, event.prev_hash, event.hash = found
    _make_durable()  # found visible, not known flushed: an append of _append_pipelined commits asynchronously


def _make_durable() -> None:
    """Return once every commit so far is flushed (a synchronous commit of a WAL record)."""
    with connection.cursor() as cursor:
        cursor.execute(DURABILITY_BARRIER)


def _append_pipelined(rows: list[_Row]) -> None:
    """Append `rows` in two round trips, durably."""
    connection.ensure_connection()
    pg = connection.connection
    try:
        with connection.cursor() as head_cursor, connection.cursor() as cursor:
            with pg.pipeline():
                head_cursor.execute("BEGIN")
                head_cursor.execute("SET LOCAL synchronous_commit = off")
                # A writer stopped while it holds the chain lock (SIGSTOP, a hung host) stops
                # every other writer: PostgreSQL ends its transaction instead.
                head_cursor.execute(f"SET LOCAL idle_in_transaction_session_timeout = {LOCK_HOLD_LIMIT_MS}")
                linked = _link(rows, _head(head_cursor))  # fetching the head syncs the pipeline: round trip 1
                _insert(cursor, linked)
                head_cursor.execute("COMMIT")
                head_cursor.execute(DURABILITY_BARRIER)
            _set_ids(cursor, linked)  # the pipeline's exit: round trip 2, the flush
    except BaseException:
        # A failed statement leaves the transaction aborted (or the link broken): start clean.
        connection.close()
        raise


class _GroupCommit:
    """Leader/follower group commit of one process's concurrent appenders."""

    def __init__(self):
        self._cond = threading.Condition()
        self._queue: list[list] = []  # [row, done, error]
        self._leading = False

    def append(self, row: _Row) -> None:
        slot = [row, False, None]
        with self._cond:
            self._queue.append(slot)
            while not slot[1]:
                if self._leading:
                    self._cond.wait()
                    continue
                self._leading = True
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                error = None
                self._cond.release()
                try:
                    _append_pipelined([s[0] for s in batch])
                except Exception as exc:
                    error = exc
                finally:
                    self._cond.acquire()
                    self._leading = False
                    for s in batch:
                        s[1], s[2] = True, error
                    self._cond.notify_all()
        if slot[2] is not None:
            raise slot[2]


_group = _GroupCommit()
_appender = AppenderClient(_append_unless_appended)


def _fresh_group_after_fork() -> None:
    """A child forked while a thread of the parent led a batch must not inherit its held state
    (nor its connections to the appender)."""
    global _group, _appender
    _group = _GroupCommit()
    _appender = AppenderClient(_append_unless_appended)


os.register_at_fork(after_in_child=_fresh_group_after_fork)
