"""Streaming the log to SIEM sinks: each sink keeps a cursor over the chain's seq.

Delivery walks the chain from a sink's cursor in seq order, one batch at a
time, and moves the cursor only after the sink took the batch: a sink that was
down gets everything it missed, in order, when it is back; a batch that went
out but whose cursor move was lost is sent again (at-least-once, duplicates
carry the same seq). Nothing here runs in the gateway's request: the writer
only asks a worker to drain (at most once a second per process), and beat
drains every AUDIT_STREAM_SECONDS in case a kick was lost.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

log = logging.getLogger(__name__)


def flow_of(approval_id, request_id: str) -> str:
    """The correlation id of an event: its approval request's flow, else its originating request."""
    return f"approval-{approval_id}" if approval_id else request_id


class _Kicks:
    """Per-process throttle: at most one drain request a second, and none without an enabled sink."""

    lock = threading.Lock()
    kicked = checked = float("-inf")
    active = False

    @classmethod
    def due(cls) -> bool:
        now = time.monotonic()
        with cls.lock:
            if now - cls.kicked < settings.AUDIT_STREAM_KICK_SECONDS:
                return False
            if now - cls.checked > settings.AUDIT_STREAM_KICK_SECONDS * 5:
                from .models import AuditSink

                cls.active, cls.checked = AuditSink.objects.filter(enabled=True).exists(), now
            if cls.active:
                cls.kicked = now
            return cls.active

    @classmethod
    def forget(cls) -> None:
        """A sink was added or enabled in this process: look again on the next write."""
        with cls.lock:
            cls.checked = float("-inf")


def kick_streams() -> None:
    if not _Kicks.due():
        return
    from .tasks import stream

    try:
        stream.apply_async(retry=False)
    except Exception as exc:  # the broker is down: beat drains once it is back
        log.warning("could not ask a worker to stream the audit log: %s", exc)


forget_sinks = _Kicks.forget


def drain_all(now: datetime | None = None) -> dict[str, int]:
    """Deliver what every enabled sink is missing; returns events delivered per sink."""
    from .models import AuditSink

    return {name: drain(pk, now=now) for pk, name in AuditSink.objects.filter(enabled=True).values_list("pk", "name")}


def drain(sink_id: int, *, now: datetime | None = None) -> int:
    """Deliver a sink's missing events in batches until it is current, fails, or another worker holds it."""
    delivered = 0
    while True:
        sent = _deliver_one_batch(sink_id, now or timezone.now())
        if not sent:
            return delivered
        delivered += sent


def _deliver_one_batch(sink_id: int, now: datetime) -> int:
    from . import transports
    from .metrics import STREAM_DELIVERED, STREAM_FAILURES
    from .models import AuditEvent, AuditSink

    # The row lock makes one worker at a time deliver for a sink (PostgreSQL; SQLite serialises
    # writers anyway), so batches leave in cursor order. It is held across the send, which the
    # transports bound with timeouts.
    with transaction.atomic():
        sink = AuditSink.objects.select_for_update(skip_locked=True).filter(pk=sink_id, enabled=True).first()
        if sink is None or (sink.retry_at and sink.retry_at > now):
            return 0
        events = list(AuditEvent.objects.filter(seq__gt=sink.cursor).order_by("seq")[: settings.AUDIT_STREAM_BATCH])
        if not events:
            return 0
        try:
            for attempt in Retrying(
                stop=stop_after_attempt(settings.AUDIT_STREAM_ATTEMPTS),
                wait=wait_exponential(multiplier=settings.AUDIT_STREAM_RETRY_SECONDS, max=5),
                retry=retry_if_exception_type(transports.SinkError),
                reraise=True,
            ):
                with attempt:
                    transports.send(sink, events)
        except transports.SinkError as exc:
            sink.failures += 1
            sink.last_error = str(exc)[:1000]
            # Later runs back off too, so a long outage costs one try every few minutes at most.
            sink.retry_at = now + timedelta(seconds=min(settings.AUDIT_STREAM_MAX_BACKOFF_SECONDS, 2**sink.failures))
            sink.save(update_fields=["failures", "last_error", "retry_at"])
            STREAM_FAILURES.labels(sink.name).inc()
            log.warning("audit sink %s: delivery failed (%s consecutive): %s", sink.name, sink.failures, exc)
            return 0
        sink.cursor, sink.failures, sink.last_error, sink.retry_at, sink.delivered_at = events[-1].seq, 0, "", None, now
        sink.save(update_fields=["cursor", "failures", "last_error", "retry_at", "delivered_at"])
    STREAM_DELIVERED.labels(sink.name).inc(len(events))
    return len(events)


def lag(sink, *, head: int | None = None, now: datetime | None = None) -> tuple[int, float]:
    """(events, seconds) a sink is behind: how many events it has not received, and the age of the oldest."""
    from .models import AuditEvent

    head = head if head is not None else head_seq()
    if head <= sink.cursor:
        return 0, 0.0
    oldest = AuditEvent.objects.filter(seq__gt=sink.cursor).order_by("seq").values_list("at", flat=True).first()
    seconds = max(0.0, ((now or timezone.now()) - oldest).total_seconds()) if oldest else 0.0
    return head - sink.cursor, round(seconds, 3)


def head_seq() -> int:
    from .models import AuditEvent

    return AuditEvent.objects.aggregate(m=Max("seq"))["m"] or 0
