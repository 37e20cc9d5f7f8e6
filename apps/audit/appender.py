"""The audit appender: one process appends the events of every writer process to the chain.

An append links the event to the chain head with a key the database does not hold, so the
head must come back to the console under the chain lock: each append holds the lock over a
client round trip. Concurrent callers of one process share a batch (writer._GroupCommit), but
processes that serve one request at a time (Celery workers, a web process at low concurrency)
cannot share anything, and eight of them queue on the lock one append after another. Here
they hand their events over a Unix socket to one process whose single loop reads every
writer's socket and writes whatever arrived during its last batch as the next batch: one
statement (prepared once), one lock hold and one synchronous commit for all of them, then it
answers each writer with its event's place in the chain. The answer means durable, and no
writer pays for a commit of its own. The appender is the only writer that normally takes the
chain lock, so holding it over the WAL flush costs nobody a wait; the events that arrive
meanwhile are the next batch.

`manage.py audit_appender` runs it; writers use it when AUDIT_APPENDER_SOCKET names its socket.
The socket is created owner-only (0600): whoever can connect can append events. What happens
when it is down, killed or hung is in appender_client.py and docs/audit.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import socket
import time
from functools import cache

import psycopg
from django.db import connection

from .appender_client import EVENT, PLACED, SENT, send_frame
from .models import AuditEvent
from .writer import _FIELDS, CHAIN_LOCK_ID, MAX_BATCH, TABLE, _append_pipelined, _link, _Row

log = logging.getLogger(__name__)


class AppenderServer:
    def __init__(self, path: str):
        if answers(path):
            raise RuntimeError(f"an audit appender already listens on {path}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # the socket file of an appender that died
        self.path = path
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        umask = os.umask(0o177)  # the socket is created owner-only
        try:
            self._listener.bind(path)
        finally:
            os.umask(umask)
        self._listener.listen(1024)  # every writer thread of every process may connect at once
        self._wake_reader, self._wake = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._selector.register(self._wake_reader, selectors.EVENT_READ)
        self._buffers: dict[socket.socket, bytearray] = {}
        self._running = True

    def serve_forever(self) -> None:
        """Read what writers sent; append it as one batch; repeat (until `shutdown`)."""
        head = None  # the head this loop wrote last: while nobody else appends, still the head
        queued: list = []
        try:
            while self._running or queued:
                queued += self._gather(wait=not queued)
                batch, queued = self._unexpired(queued[:MAX_BATCH]), queued[MAX_BATCH:]
                head = self._append(batch, head)
        finally:
            connection.close()

    def _gather(self, wait: bool) -> list:
        """Everything sent so far (waiting for something if `wait`): until nothing more is ready, so
        a writer that connected meanwhile (accepted in one round, read in the next) is in it too."""
        taken: list = []
        timeout = None if wait else 0
        while len(taken) < MAX_BATCH and (ready := self._selector.select(timeout)):
            timeout = 0
            for key, _ in ready:
                if key.fileobj is self._listener:
                    self._accept()
                elif key.fileobj is self._wake_reader:
                    self._wake_reader.recv(64)  # `shutdown` woke the loop
                else:
                    taken += self._read(key.fileobj)
        return taken

    def shutdown(self) -> None:
        """Stop taking events; what was read is still appended and answered."""
        self._running = False
        self._wake.send(b"x")

    def server_close(self) -> None:
        for sock in [self._listener, self._wake, self._wake_reader, *self._buffers]:
            sock.close()
        self._selector.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _accept(self) -> None:
        sock, _ = self._listener.accept()
        self._buffers[sock] = bytearray()
        self._selector.register(sock, selectors.EVENT_READ)

    def _read(self, sock: socket.socket) -> list:
        """The complete frames `sock` has sent, as (row, socket, expiry). A connection that ended,
        or sent what is not an event, is dropped (after the answers it is owed)."""
        data = b""
        with contextlib.suppress(OSError):
            data = sock.recv(65536)
        buffer = self._buffers[sock]
        buffer += data
        taken = []
        try:
            while len(buffer) >= EVENT.size and len(buffer) >= EVENT.size + (size := EVENT.unpack_from(buffer)[0]):
                expires = EVENT.unpack_from(buffer)[1]
                text = buffer[EVENT.size : EVENT.size + size].decode()
                del buffer[: EVENT.size + size]
                taken.append(self._take(sock, text, expires))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.error("audit appender: dropped a connection that sent what is not an event: %s", exc)
            data = b""
        if not data:
            self._selector.unregister(sock)
            del self._buffers[sock]
            sock.close()
        return taken

    def _take(self, sock: socket.socket, text: str, expires: float) -> tuple:
        return _Sent(text), sock, expires

    def _append(self, batch: list, head):
        if not batch:
            return head
        rows = [row for row, *_ in batch]
        try:
            if not (head and _append_after(rows, head)):
                _append_unlinked(rows)
        except Exception as exc:  # not appended, or committed without the answer: the writers recover
            _answer_failed(batch, exc)
            return None
        for row, sock, _ in batch:
            _answer(sock, {"id": row.pk, "at": row.at.isoformat(), **{name: getattr(row, name) for name in PLACED}})
        last = rows[-1]
        return (last.seq, last.hash, last.key_id)

    def _unexpired(self, items: list) -> list:
        """Leave out the events whose writers have stopped waiting (they append them themselves)."""
        now = time.time()
        expired = [item for item in items if item[2] <= now]
        if expired:
            _answer_failed(expired, TimeoutError("the writer stopped waiting"))
        return [item for item in items if item[2] > now]


class _Sent:
    """An event as its writer sent it (appender_client.py): its linked values, all but those
    placed under the chain lock, ready-made, and their JSON text. The appender links them as
    they are and splices their text into the batch's JSON: it builds no model and encodes
    nothing per event, so its one loop, which every writer waits for, does little per event."""

    __slots__ = ("at", "hash", "key_id", "pk", "prev_hash", "seq", "text", "values")
    NAMES = frozenset(SENT)

    def __init__(self, text: str):
        values = json.loads(text)
        if not (text.startswith("{") and isinstance(values, dict) and values.keys() == self.NAMES):
            raise ValueError("not an audit event's fields")
        self.text, self.values = text, values

    def place(self, seq: int, at, key_id: str, prev_hash: str, hash_: str) -> None:
        self.seq, self.at, self.key_id, self.prev_hash, self.hash = seq, at, key_id, prev_hash, hash_

    def as_json(self) -> str:
        # Every placed value is a number, a time stamp or hex: nothing to escape.
        placed = f'{{"seq":{self.seq},"at":"{self.values["at"]}","key_id":"{self.key_id}",'
        return placed + f'"prev_hash":"{self.prev_hash}","hash":"{self.hash}",' + self.text[1:]

    def as_row(self) -> _Row:
        return _Row(AuditEvent(**{name: self.values[name] for name in SENT}))


@cache
def _insert_after_sql() -> str:
    """The batch's INSERT, made conditional: it takes the chain lock and inserts only if the head is
    the one the rows were linked to. The rows come as one JSON array of their linked values (what
    the link was computed over, so the database stores exactly that): one parameter, one text."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in _FIELDS)
    return (
        f"INSERT INTO {TABLE} ({columns}) SELECT {columns} FROM json_populate_recordset(NULL::{TABLE}, %s::json)"  # noqa: S608
        f" WHERE (SELECT head_hash FROM audit_chain_head({CHAIN_LOCK_ID})) = %s RETURNING {quote('id')}"
    )


def _append_after(rows: list, head: tuple) -> bool:
    """Append `rows` linked after `head` (seq, hash, key id), which this loop wrote last and so
    believes is the chain's head, in one statement (its own transaction, committed durably);
    False (nothing written) when another writer moved the head. The statement is prepared on
    the loop's connection, which does nothing else."""
    connection.ensure_connection()
    linked = _link(rows, head)
    body = "[" + ",".join(row.as_json() for row in linked) + "]"
    try:
        # Bound on the server and prepared once: the statement's text is the same for any batch.
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(_insert_after_sql(), [body, head[1]], prepare=True)
            inserted = cursor.fetchall()
    except BaseException:
        connection.close()
        raise
    if not inserted:
        return False
    for row, (pk,) in zip(linked, inserted, strict=True):
        row.pk = pk
    return True


def _append_unlinked(rows: list[_Sent]) -> None:
    """Append `rows` after whatever the head is (the loop's first batch, or another writer moved it)."""
    as_rows = [row.as_row() for row in rows]
    _append_pipelined(as_rows)
    for row, done in zip(rows, as_rows, strict=True):
        event = done.event
        row.place(event.seq, event.at, event.key_id, event.prev_hash, event.hash)
        row.pk = event.pk


def _answer_failed(items: list, exc: Exception) -> None:
    log.error("audit appender: %d events not answered as appended: %s", len(items), exc)
    for _, sock, _ in items:
        _answer(sock, {"error": f"{type(exc).__name__}: {exc}"})


def _answer(sock: socket.socket, message: dict) -> None:
    with contextlib.suppress(OSError):  # a writer that went away finds out from the chain
        send_frame(sock, message)


def answers(path: str) -> bool:
    """Whether an appender listens on `path`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            return False
    return True
