"""The delivery log in motion: store one Delivery per destination, send it (on a
worker), and retry what failed for a transient reason later — nothing is lost:
a failed delivery keeps its message, its error and its attempts.

A delivery is claimed before it is sent (queued/retrying -> sending), so the
task queued at commit and the beat sweeper never send it twice; a worker that
dies mid-send leaves it `sending`, and the sweeper takes it back after
SENDING_TIMEOUT (at-least-once).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.core.errors import OpsError, PeerUnavailable
from apps.core.live import publish_template

from . import render, timeline
from .client import SlackChannel, channel_for
from .errors import CommsError, SendTimedOut
from .models import Connector, Delivery, Incident, StatusMessage
from .render import Message
from .routing import Destination

log = logging.getLogger(__name__)
# Seconds before the next attempt after the 1st, 2nd, ... failure.
BACKOFF = [60, 300, 900, 3600]
SENDING_TIMEOUT = timedelta(minutes=10)
# A queued delivery whose task never ran (broker lost it) is picked up by the sweeper after this.
QUEUED_GRACE = timedelta(minutes=1)
# Kinds whose every attempt carries the same idempotency key: the webhook's X-Opsconsole-Delivery, email's Message-ID.
IDEMPOTENT = {Connector.WEBHOOK: "X-Opsconsole-Delivery id", Connector.EMAIL: "Message-ID"}
OUTCOME_UNKNOWN = "An attempt timed out after sending: the peer may have received it"


def create(
    destinations: list[Destination], message: Message, *, origin: str, incident: Incident | None = None, status_key: str = ""
) -> list[Delivery]:
    deliveries = [
        Delivery.objects.create(
            connector=d.connector,
            kind=d.connector.kind,
            target=d.target,
            recipient=d.recipient,
            title=message.title[:300],
            message=message.model_dump(mode="json"),
            origin=origin,
            incident=incident,
            status_key=status_key,
        )
        for d in destinations
    ]
    for delivery in deliveries:
        publish_row(delivery, new=True)
    return deliveries


def queue(deliveries: list[Delivery]) -> None:
    """Send each on a worker once the transaction commits (the sweeper is the safety net)."""
    from .tasks import deliver as deliver_task

    for delivery in deliveries:
        transaction.on_commit(lambda pk=str(delivery.pk): deliver_task.delay(pk))


def claimable(now: datetime) -> Q:
    return (
        Q(status=Delivery.QUEUED)
        | Q(status=Delivery.RETRYING, next_attempt_at__lte=now)
        | Q(status=Delivery.SENDING, claimed_at__lt=now - SENDING_TIMEOUT)
    )


def deliver(delivery_id, now: datetime | None = None) -> Delivery | None:
    """Claim and send one delivery; record the outcome. Returns None when another
    worker has it (or it was sent already)."""
    now = now or timezone.now()
    claimed = Delivery.objects.filter(claimable(now), pk=delivery_id).update(
        status=Delivery.SENDING, claimed_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("connector", "incident").get(pk=delivery_id)
    notes: list[str] = []
    try:
        if delivery.connector is None:
            raise CommsError("Its connector was deleted.")
        delivery.external_id = send(delivery, notes, now)[:200]
    except (CommsError, PeerUnavailable) as exc:
        delivery.outcome_unknown |= isinstance(exc, SendTimedOut) and exc.outcome_unknown
        transient = getattr(exc, "transient", True)
        _failed(delivery, exc.message, transient, getattr(exc, "retry_after", None), now)
    except OpsError as exc:
        _failed(delivery, exc.message, False, None, now)
    except Exception as exc:
        log.exception("delivery %s (%s) failed", delivery.pk, delivery.kind)
        _failed(delivery, f"internal error: {type(exc).__name__}", False, None, now)
    else:
        delivery.status, delivery.sent_at, delivery.error, delivery.next_attempt_at = Delivery.SENT, timezone.now(), "", None
    if delivery.outcome_unknown:  # first, so it is never cut off; a later attempt does not make it known
        notes.insert(0, unknown_outcome(delivery.kind))
    delivery.note = "; ".join(notes)[:300]
    delivery.save(update_fields=["status", "sent_at", "error", "next_attempt_at", "note", "outcome_unknown", "external_id"])
    _record(delivery)
    return delivery


def unknown_outcome(kind: str) -> str:
    key = IDEMPOTENT.get(kind)
    repeat = f"each attempt carries the same {key}, so the receiver can drop a repeat" if key else "a retry may repeat it"
    return f"{OUTCOME_UNKNOWN}; {repeat}"


def _failed(delivery: Delivery, error: str, transient: bool, retry_after: float | None, now: datetime) -> None:
    delivery.error = error[:4000]
    if transient and delivery.attempts < settings.COMMS_MAX_ATTEMPTS:
        # The peer's Retry-After when it gave one, else our backoff.
        wait = retry_after if retry_after is not None else BACKOFF[min(delivery.attempts, len(BACKOFF)) - 1]
        delivery.status, delivery.next_attempt_at = Delivery.RETRYING, now + timedelta(seconds=wait)
    else:
        delivery.status, delivery.next_attempt_at = Delivery.FAILED, None


def send(delivery: Delivery, notes: list[str], now: datetime) -> str:
    """Send through the delivery's connector; returns the peer's id for the message."""
    message = Message.model_validate(delivery.message)
    channel = channel_for(delivery.connector)
    try:
        if delivery.kind == Connector.SLACK:
            text, blocks = render.slack(message)
            channel_id, ts = channel.post(delivery.recipient, text, blocks)
            if delivery.status_key:
                StatusMessage.objects.update_or_create(
                    key=delivery.status_key, connector=delivery.connector, recipient=delivery.recipient,
                    defaults={"channel": channel_id, "ts": ts, "text": text, "updated_at": now, "reported_at": now},
                )  # fmt: skip
            return f"{channel_id}/{ts}"
        if delivery.kind == Connector.TEAMS:
            channel.send(render.teams(message))
            return ""
        if delivery.kind == Connector.EMAIL:
            return channel.send(delivery.recipient, *render.email(message), message_id=f"<{delivery.pk}@opsconsole>")
        if delivery.kind == Connector.SMS:
            return channel.send(delivery.recipient, render.sms(message))
        return f"HTTP {channel.send(render.webhook(message, str(delivery.pk), now), str(delivery.pk))}"
    finally:
        notes.extend(channel.notes)


def update_in_place(status: StatusMessage, message: Message) -> None:
    """Edit a posted Slack message (chat.update) to show `message`."""
    text, blocks = render.slack(message)
    SlackChannel(status.connector).update(status.channel, status.ts, text, blocks)
    status.text = text


def sweep(now: datetime | None = None) -> int:
    """Send what is due: retries whose time came, queued rows whose task was lost, stuck sends."""
    now = now or timezone.now()
    due = Delivery.objects.filter(claimable(now)).exclude(status=Delivery.QUEUED, created_at__gt=now - QUEUED_GRACE)
    count = 0
    for pk in due.order_by("created_at").values_list("pk", flat=True)[:500]:
        count += deliver(pk, now) is not None
    return count


def resend(delivery: Delivery) -> Delivery:
    """Queue a failed delivery again (a person fixed the connector)."""
    if delivery.status not in (Delivery.FAILED, Delivery.RETRYING):
        raise CommsError(f"Only failed deliveries can be sent again; this one is {delivery.status}.")
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.QUEUED, attempts=0, next_attempt_at=None)
    delivery.refresh_from_db()
    queue([delivery])
    publish_row(delivery)
    return delivery


def _record(delivery: Delivery) -> None:
    publish_row(delivery)
    if delivery.incident is None or delivery.status == Delivery.SENDING:
        return
    where = delivery.target or f"{delivery.kind} {delivery.recipient}".strip()
    if delivery.status == Delivery.SENT:
        timeline.add(delivery.incident, "notification", f"Notified {where}: {delivery.title}", "comms")
    elif delivery.status == Delivery.FAILED:
        timeline.add(delivery.incident, "notification", f"Could not notify {where}: {delivery.error}", "comms")
    elif delivery.attempts == 1:  # say so once, not at every retry
        timeline.add(delivery.incident, "notification", f"Notifying {where} failed, will retry: {delivery.error}", "comms")


def publish_row(delivery: Delivery, new: bool = False) -> None:
    publish_template("deliveries", "comms/_delivery_live.html", {"d": delivery, "new": new})
