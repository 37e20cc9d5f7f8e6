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

from django.db import connection

from .appender_client import HEADER, PLACED, SENT, send_frame
from .models import AuditEvent
from .writer import MAX_BATCH, _append_after, _append_pipelined, _Row

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
            while len(buffer) >= HEADER.size and len(buffer) >= HEADER.size + (size := HEADER.unpack_from(buffer)[0]):
                message = json.loads(bytes(buffer[HEADER.size : HEADER.size + size]))
                del buffer[: HEADER.size + size]
                taken.append(self._take(sock, message))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.error("audit appender: dropped a connection that sent what is not an event: %s", exc)
            data = b""
        if not data:
            self._selector.unregister(sock)
            del self._buffers[sock]
            sock.close()
        return taken

    def _take(self, sock: socket.socket, message: dict) -> tuple:
        event = AuditEvent(**{name: value for name, value in message["event"].items() if name in SENT})
        return _Row(event, prepare=False), sock, float(message["expires"])

    def _append(self, batch: list, head):
        if not batch:
            return head
        rows = [row for row, *_ in batch]
        try:
            if not (head and _append_after(rows, head)):
                _append_pipelined(rows)
        except Exception as exc:  # not appended, or committed without the answer: the writers recover
            _answer_failed(batch, exc)
            return None
        for row, sock, _ in batch:
            event = row.event
            _answer(sock, {"id": event.pk, "at": event.at.isoformat(), **{name: getattr(event, name) for name in PLACED}})
        last = rows[-1].event
        return (last.seq, last.hash, last.key_id)

    def _unexpired(self, items: list) -> list:
        """Leave out the events whose writers have stopped waiting (they append them themselves)."""
        now = time.time()
        expired = [item for item in items if item[2] <= now]
        if expired:
            _answer_failed(expired, TimeoutError("the writer stopped waiting"))
        return [item for item in items if item[2] > now]


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
