"""The audit appender: one process appends the events of every writer process to the chain.

An append links the event to the chain head with a key the database does not hold, so the
head must come back to the console under the chain lock: each append holds the lock over a
client round trip. Concurrent callers of one process share a batch (writer._GroupCommit), but
processes that serve one request at a time (Celery workers, a web process at low concurrency)
cannot share anything, and eight of them queue on the lock one append after another. Here
they hand their events over a Unix socket to one process whose single loop reads every
writer's socket and writes whatever arrived during its last batch as the next batch: one lock
hold and one statement for all of them, committed asynchronously, so the chain lock is free
again at once. A second thread makes what was committed durable: one durability barrier (a
synchronous commit on its own connection, writer.DURABILITY_BARRIER) covers every batch
committed before it, so the batches that arrive while one barrier waits for the WAL flush share
the next. Only then does it answer each writer with its event's place in the chain, and the
writer returns to its caller: the answer means durable, and no writer pays for a flush of its
own.

`manage.py audit_appender` runs it; writers use it when AUDIT_APPENDER_SOCKET names its socket.
The socket is created owner-only (0600): whoever can connect can append events. What happens
when it is down, killed or hung is in appender_client.py and docs/audit.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import selectors
import socket
import threading
import time

from django.db import connection

from .appender_client import HEADER, PLACED, SENT, send_frame
from .models import AuditEvent
from .writer import MAX_BATCH, _append_after, _append_pipelined, _make_durable, _Row

log = logging.getLogger(__name__)


class AppenderServer:
    def __init__(self, path: str, make_durable=_make_durable):
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
        self._make_durable = make_durable
        # What the loop appended (or failed to), in order, for the flusher to answer: (items, error).
        self._appended: queue.SimpleQueue = queue.SimpleQueue()

    def serve_forever(self) -> None:
        """Read what writers sent; append it as one batch; repeat (until `shutdown`)."""
        flusher = threading.Thread(target=self._flush_forever, name="audit-appender-flusher")
        flusher.start()
        head = None  # the head this loop wrote last: while nobody else appends, still the head
        queued: list = []
        try:
            while self._running or queued:
                for key, _ in self._selector.select(timeout=0 if queued else None):
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.fileobj is not self._wake_reader:
                        queued += self._read(key.fileobj)
                batch, queued = self._unexpired(queued[:MAX_BATCH]), queued[MAX_BATCH:]
                head = self._append(batch, head)
        finally:
            self._appended.put(None)  # the flusher answers what is left, then ends
            flusher.join()
            connection.close()

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
                _append_pipelined(rows, durable=False)
        except Exception as exc:
            self._appended.put((batch, exc))
            return None
        self._appended.put((batch, None))
        last = rows[-1].event
        return (last.seq, last.hash, last.key_id)

    def _unexpired(self, items: list) -> list:
        """Leave out the events whose writers have stopped waiting (they append them themselves)."""
        now = time.time()
        expired = [item for item in items if item[2] <= now]
        if expired:
            self._appended.put((expired, TimeoutError("the writer stopped waiting")))
        return [item for item in items if item[2] > now]

    def _flush_forever(self) -> None:
        """Answer the writers of what the loop appended once it is durable: take every batch
        committed so far, run one barrier for all of them, answer; repeat until the loop ends.
        The one thread that writes to writers' sockets."""
        done = False
        try:
            while not done:
                taken = [self._appended.get()]
                with contextlib.suppress(queue.Empty):
                    while True:
                        taken.append(self._appended.get_nowait())
                done = None in taken
                self._answer_durable([item for item in taken if item is not None])
        finally:
            connection.close()

    def _answer_durable(self, taken: list) -> None:
        flushed = None
        if any(error is None for _, error in taken):
            try:
                self._make_durable()
            except Exception as exc:  # committed, but not known to be durable: the writers recover
                connection.close()
                flushed = exc
        for items, error in taken:
            if error or flushed:
                _answer_failed(items, error or flushed)
                continue
            for row, sock, _ in items:
                event = row.event
                _answer(sock, {"id": event.pk, "at": event.at.isoformat(), **{name: getattr(event, name) for name in PLACED}})


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
