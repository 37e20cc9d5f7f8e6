"""A writer's side of the audit appender (apps/audit/appender.py): hand an event over the
appender's Unix socket and wait for its answer: the event's place in the chain, committed and
durable.

An event goes out as a 4-byte big-endian length, the 8-byte time its writer stops waiting, and
the JSON object of its linked values (chain.row_values, but for those placed under the lock):
what the appender links and stores as it is. Back comes a length and a JSON object: the event's
place in the chain (id, seq, at, key_id, prev_hash, hash) or {"error": ...}. A connection serves
one call at a time and is kept between calls for any thread (core/idle.py). An appender that cannot
be reached is skipped for a while (the caller appends itself); one lost after the event was sent
(killed, restarted, silent past the timeout) leaves the outcome unknown, so the event goes to
`recover`, which appends it unless it is already in.
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
import struct
import time
from datetime import datetime

from django.conf import settings

from apps.core.idle import Idle

from .chain import row_values
from .models import AuditEvent

log = logging.getLogger(__name__)
HEADER = struct.Struct(">I")
EVENT = struct.Struct(">Id")  # length, expiry
# The fields a writer sends: what it knows before the chain head (the rest is placed under the lock).
PLACED = ("seq", "key_id", "prev_hash", "hash")
SENT = [f.attname for f in AuditEvent._meta.concrete_fields if f.attname not in {"id", "at", *PLACED}]


def send_event(sock: socket.socket, event: AuditEvent, expires: float) -> None:
    values = row_values(event)
    body = json.dumps({name: values[name] for name in SENT}, separators=(",", ":")).encode()
    sock.sendall(EVENT.pack(len(body), expires) + body)


def send_frame(sock: socket.socket, message: dict) -> None:
    body = json.dumps(message, separators=(",", ":")).encode()
    sock.sendall(HEADER.pack(len(body)) + body)


def receive_frame(stream) -> dict | None:
    """The next frame from a file-like stream, or None at a clean end of stream."""
    head = stream.read(HEADER.size)
    if not head:
        return None
    if len(head) < HEADER.size:
        raise ConnectionError("truncated frame")
    (size,) = HEADER.unpack(head)
    body = stream.read(size)
    if len(body) < size:
        raise ConnectionError("truncated frame")
    return json.loads(body)


class AppenderClient:
    """This process's connections to the appender, taken by one call at a time (core/idle.py)."""

    def __init__(self, recover):
        self._recover = recover
        self._idle = Idle(_close)
        self._skip_until = 0.0

    def append(self, event: AuditEvent) -> bool:
        """Append `event` through the appender; False when it cannot be reached (nothing was sent)."""
        conn = self._connection()
        if conn is None:
            return False
        event.append_key = secrets.token_hex(16)
        # The appender drops an event it gets to after this writer stopped waiting (and appended it).
        expires = time.time() + settings.AUDIT_APPENDER_TIMEOUT
        try:
            send_event(conn[0], event, expires)
            reply = receive_frame(conn[1])
        except (OSError, ValueError) as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        except BaseException:  # interrupted mid-way: the answer may be half-read, the connection is not reused
            _close(conn)
            raise
        if reply is None or "error" in reply:
            _close(conn)
            self._idle.close_all()  # opened before it was lost (a restart): none would answer
            self._skip(reply["error"] if reply else "it closed the connection")
            self._recover(event)
            return True
        self._idle.give(conn)
        for name in PLACED:
            setattr(event, name, reply[name])
        event.pk, event.at = reply["id"], datetime.fromisoformat(reply["at"])
        return True

    def _connection(self):
        conn = self._idle.take()
        if conn is not None or time.monotonic() < self._skip_until:
            return conn
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(settings.AUDIT_APPENDER_TIMEOUT)
        try:
            sock.connect(settings.AUDIT_APPENDER_SOCKET)
        except OSError as exc:
            sock.close()
            self._skip(f"cannot reach it ({exc})")
            return None
        return sock, sock.makefile("rb")

    def _skip(self, why: str) -> None:
        retry = settings.AUDIT_APPENDER_RETRY_SECONDS
        log.warning("audit appender at %s: %s; appending in this process for %s s", settings.AUDIT_APPENDER_SOCKET, why, retry)
        self._skip_until = time.monotonic() + retry


def _close(conn: tuple) -> None:
    sock, stream = conn
    stream.close()
    sock.close()
