"""Comms operations: notifications, messages, alerts, Slack channels, status
messages, deployment broadcasts and incidents. Sends that fan out run as jobs
on a worker; alerts and incidents answer at once and queue their deliveries."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from . import alertmanager, dispatch, incidents, routing
from .client import SlackChannel
from .errors import CommsError
from .locks import status_lock
from .models import Connector, Delivery, Incident, StatusMessage
from .render import Message
from .schemas import (
    ChannelInfo,
    CommentInput,
    CreateChannelInput,
    DeliveriesOutput,
    DeliveryInfo,
    DeploymentInput,
    DeploymentOutput,
    EscalateDueInput,
    EscalateDueOutput,
    EscalateInput,
    IncidentId,
    IncidentInfo,
    IncidentRef,
    IncidentTimeline,
    IngestOutput,
    ListChannelsInput,
    ListChannelsOutput,
    PostMessageInput,
    PostMessageOutput,
    ResendInput,
    RouteInput,
    RouteOutput,
    SendAlertInput,
    SendAlertOutput,
    SendNotificationInput,
    TimelineItem,
    UpdateStatusInput,
    UpdateStatusOutput,
)

FINAL_DEPLOYMENT = {"succeeded", "failed", "rolled_back", "cancelled"}


def info(d: Delivery) -> DeliveryInfo:
    return DeliveryInfo(
        id=str(d.pk), target=d.target, kind=d.kind, recipient=d.recipient, status=d.status, attempts=d.attempts,
        error=d.error, note=d.note, outcome_unknown=d.outcome_unknown, external_id=d.external_id,
    )  # fmt: skip


def send_now(ctx: Context, deliveries: list[Delivery]) -> list[Delivery]:
    """Send on this worker, one by one, reporting each outcome in the job log."""
    done = []
    for n, delivery in enumerate(deliveries, 1):
        dispatch.deliver(delivery.pk)
        delivery.refresh_from_db()
        where = delivery.target or f"{delivery.kind} {delivery.recipient}".strip()
        failed = delivery.status != Delivery.SENT
        ctx.log(f"{where}: {delivery.status}{' — ' + delivery.error if failed else ''}", "error" if failed else "info")
        ctx.progress(100 * n / len(deliveries), f"{n} of {len(deliveries)} sent")
        done.append(delivery)
    return done


def _connector(kind: str, name: str = "") -> Connector:
    qs = Connector.objects.filter(kind=kind, enabled=True)
    if name:
        found = qs.filter(name=name).first()
        if found is None:
            raise CommsError(f"No enabled {kind} connector named {name}.")
        return found
    found = list(qs[:2])
    if len(found) != 1:
        what = "no enabled" if not found else "several enabled"
        raise CommsError(f"There is {what} {kind} connector: name one (see the Comms setup page).")
    return found[0]


@operation("comms.send_notification", risk=Risk.WRITE, long=True, target=lambda p: ",".join(p.channels) or "routing rules")
def send_notification(ctx: Context, params: SendNotificationInput) -> DeliveriesOutput:
    """Send a message to several channels at once: the named targets, or whoever the routing rules pick for its
    priority, severity and metadata labels. Runs as a job; each channel's outcome is in the result (a channel that is
    down is marked failed or retrying there, the others are still delivered)."""
    labels = routing.effective_labels(params.metadata, priority=params.priority, severity=params.severity or "")
    route = routing.route(labels) if not params.channels else routing.Route(targets=params.channels)
    if not route.targets:
        raise CommsError("No channel given and no routing rule (nor a default route) matches this message.")
    message = Message(
        title=params.title, text=params.message, severity=params.severity or "", priority=params.priority, link=params.link,
        fields=params.metadata, event="notification", data={"metadata": params.metadata},
    )  # fmt: skip
    deliveries = dispatch.create(routing.destinations(route.targets), message, origin="comms.send_notification")
    return DeliveriesOutput(deliveries=[info(d) for d in send_now(ctx, deliveries)], routed_by=[r.name for r in route.rules])


@operation("comms.post_message", risk=Risk.WRITE, long=True, target=lambda p: f"{p.channel_type} {p.recipient}".strip())
def post_message(ctx: Context, params: PostMessageInput) -> PostMessageOutput:
    """Post one message through one channel type to one recipient (#channel, address, +number; nothing for Teams or a
    webhook). Give status_key on Slack to edit the message later with comms.update_status."""
    connector = _connector(params.channel_type, params.connector)
    if connector.kind in (Connector.SLACK, Connector.EMAIL, Connector.SMS) and not params.recipient:
        raise CommsError(f"A {connector.kind} message needs a recipient.")
    if params.status_key and connector.kind != Connector.SLACK:
        raise CommsError("Only Slack messages can be edited in place (status_key).")
    message = Message(title=params.title, text=params.text)
    destination = routing.Destination(connector, params.recipient)
    deliveries = dispatch.create([destination], message, origin="comms.post_message", status_key=params.status_key)
    return PostMessageOutput(delivery=info(send_now(ctx, deliveries)[0]))


@operation("comms.send_alert", risk=Risk.WRITE, target=lambda p: f"{p.severity} {p.type}")
def send_alert(ctx: Context, params: SendAlertInput) -> SendAlertOutput:
    """Raise an alert. Repeats of the same alert (type + labels, or dedup_key) inside the suppression window are
    counted, not sent; an alert muted by an inhibition rule (e.g. a firing critical mutes warnings of the same
    service) is recorded only. Otherwise it opens or joins its group's incident and the routed targets (plus level 1
    of the escalation policy) are notified; unacknowledged incidents escalate level by level."""
    data = incidents.AlertIn(
        type=params.type, severity=params.severity, title=params.title, description=params.description, labels=params.labels,
        service=params.service, dedup_key=params.dedup_key, suppress=params.suppress, window_minutes=params.window_minutes,
        policy=params.escalation_policy,
    )  # fmt: skip
    outcome = incidents.receive_alert(data, ctx.actor.name)
    alert, incident = outcome.alert, outcome.incident
    return SendAlertOutput(
        status=outcome.status, alert_id=alert.pk, fingerprint=alert.fingerprint, occurrences=alert.occurrences,
        suppressed=alert.suppressed, incident_id=incident.pk if incident else None,
        incident_url=settings.CONSOLE_BASE_URL.rstrip("/") + incident.get_absolute_url() if incident else "", targets=outcome.targets,
    )  # fmt: skip


@operation("comms.create_channel", risk=Risk.WRITE, target=lambda p: f"#{p.name}")
def create_channel(ctx: Context, params: CreateChannelInput) -> ChannelInfo:
    """Create a Slack channel (conversations.create); fails with Slack's reason, e.g. name_taken."""
    data = SlackChannel(_connector(Connector.SLACK, params.connector)).create_channel(params.name, params.private)
    return ChannelInfo(id=data["id"], name=data["name"], is_private=data.get("is_private", False))


@operation("comms.list_channels", risk=Risk.READ, target=lambda p: p.types)
def list_channels(ctx: Context, params: ListChannelsInput) -> ListChannelsOutput:
    """List the Slack workspace's channels, following Slack's pagination cursors up to `limit` channels."""
    channels = []
    for data in SlackChannel(_connector(Connector.SLACK, params.connector)).list_channels(params.types, params.exclude_archived):
        channels.append(ChannelInfo(**{k: data.get(k) for k in ChannelInfo.model_fields if k in data}))
        if len(channels) >= params.limit:
            break
    return ListChannelsOutput(channels=channels, count=len(channels))


@operation("comms.update_status", risk=Risk.WRITE, target=lambda p: p.key)
def update_status(ctx: Context, params: UpdateStatusInput) -> UpdateStatusOutput:
    """Edit posted Slack status messages in place (chat.update): every message posted with this status_key."""
    message = Message(title=params.title, text=params.text, severity=params.severity or "")
    with status_lock(params.key):
        statuses = list(StatusMessage.objects.filter(key=params.key).select_related("connector"))
        if not statuses:
            raise CommsError(f"No status message was posted with key {params.key!r} (post one with comms.post_message and status_key).")
        for status in statuses:
            dispatch.update_in_place(status, message)
            status.save(update_fields=["text"])
    return UpdateStatusOutput(updated=[f"{s.channel}/{s.ts}" for s in statuses])


@operation("comms.broadcast_deployment", risk=Risk.WRITE, long=True, target=lambda p: f"{p.service}@{p.environment} {p.deployment_id}")
def broadcast_deployment(ctx: Context, params: DeploymentInput) -> DeploymentOutput:
    """Tell the deployment's channels how it goes. Slack gets one status message per deployment, posted at the first
    report and edited in place (chat.update) at every later one; other channels get the start and the result only.
    Reports older than the one shown are skipped (jobs may run out of order)."""
    key = f"deployment:{params.deployment_id}"
    labels = routing.effective_labels({"type": "deployment", "environment": params.environment}, service=params.service)
    route = routing.route(labels) if not params.targets else routing.Route(targets=params.targets)
    message = deployment_message(params)
    result = DeploymentOutput(posted=0, updated=0, deliveries=[])
    with status_lock(key):
        shown = {(s.connector_id, s.recipient): s for s in StatusMessage.objects.filter(key=key).select_related("connector")}
        if any(s.reported_at > params.reported_at for s in shown.values()):
            result.skipped = "a newer report of this deployment is already shown"
            return result
        new = []
        for destination in routing.destinations(route.targets):
            status = shown.get((destination.connector.pk, destination.recipient))
            if status is not None:
                dispatch.update_in_place(status, message)
                status.reported_at = params.reported_at
                status.save(update_fields=["text", "reported_at"])
                result.updated += 1
            elif destination.connector.kind == Connector.SLACK or params.status in FINAL_DEPLOYMENT | {"started"}:
                new.append(destination)
        slack = [d for d in new if d.connector.kind == Connector.SLACK]
        deliveries = dispatch.create(slack, message, origin="comms.broadcast_deployment", status_key=key)
        deliveries += dispatch.create([d for d in new if d not in slack], message, origin="comms.broadcast_deployment")
        result.deliveries = [info(d) for d in send_now(ctx, deliveries)]
        StatusMessage.objects.filter(key=key).update(reported_at=params.reported_at)
        result.posted = sum(1 for d in result.deliveries if d.kind == Connector.SLACK and d.status == Delivery.SENT)
    return result


def deployment_message(p: DeploymentInput) -> Message:
    severity = {"failed": "critical", "rolled_back": "warning", "cancelled": "warning"}.get(p.status, "info")
    fields = {"Service": p.service, "Environment": p.environment, "Status": p.status.replace("_", " ")}
    fields.update({k: v for k, v in (("Revision", p.revision), ("Strategy", p.strategy)) if v})
    if p.progress is not None:
        fields["Progress"] = f"{'▓' * (p.progress // 10)}{'░' * (10 - p.progress // 10)} {p.progress}%"
    title = f"Deployment of {p.service} to {p.environment}: {p.status.replace('_', ' ')}"
    return Message(
        title=title,
        text=p.step,
        severity=severity,
        link=p.url,
        fields=fields,
        event=f"deployment.{p.status}",
        data=p.model_dump(mode="json"),
    )


def _incident(incident_id: int) -> Incident:
    incident = Incident.objects.select_related("policy", "assignee").filter(pk=incident_id).first()
    if incident is None:
        raise CommsError(f"No incident #{incident_id}.")
    return incident


def incident_info(i: Incident) -> IncidentInfo:
    return IncidentInfo(
        id=i.pk, title=i.title, status=i.status, severity=i.severity, escalation_level=i.escalation_level,
        next_escalation_at=i.next_escalation_at, assignee=i.assignee.username if i.assignee else None,
        acknowledged_by=i.acknowledged_by, resolved_by=i.resolved_by, alerts=i.alerts.count(),
        url=settings.CONSOLE_BASE_URL.rstrip("/") + i.get_absolute_url(),
    )  # fmt: skip


@operation("comms.incident", risk=Risk.READ, target=lambda p: f"incident {p.incident_id}")
def incident(ctx: Context, params: IncidentId) -> IncidentTimeline:
    """One incident: status, severity, assignee, escalation, and its timeline (alerts, pages, acks, comments)."""
    found = _incident(params.incident_id)
    entries = reversed(found.timeline.order_by("-at", "-id")[:500])
    timeline = [TimelineItem(at=e.at, kind=e.kind, text=e.text, actor=e.actor) for e in entries]
    return IncidentTimeline(**incident_info(found).model_dump(), timeline=timeline)


@operation("comms.escalate_incident", risk=Risk.WRITE, target=lambda p: f"incident {p.incident_id}")
def escalate_incident(ctx: Context, params: EscalateInput) -> IncidentInfo:
    """Page the next level of an open incident's escalation policy now (it also happens by itself when a level's
    delay passes without an acknowledgement)."""
    return incident_info(incidents.escalate(_incident(params.incident_id), ctx.actor.name, reason=params.reason))


@operation("comms.escalate_due_incident", risk=Risk.WRITE, idempotent=True, exposed=False, target=lambda p: f"incident {p.incident_id}")
def escalate_due_incident(ctx: Context, params: EscalateDueInput) -> EscalateDueOutput:
    """The clock's escalation of one unacknowledged incident (the beat tick calls it as the system, one call per due
    incident): page the next level if the incident is still open, still at `level` and due at `at`; otherwise change
    nothing and say why (escalated false). Idempotent: the same call again finds it no longer at `level`.

    The tick's time `at` is an input so that tests drive the clock as the tick does (the gateway has no clock of its
    own); it is the time the escalation is recorded at and the next level is scheduled from. It cannot escalate
    anything early: it may not be ahead of the console's clock (a few seconds' skew), and a time before now only
    finds due what was already due then, which still is (only an escalation, an acknowledgement or a resolution
    moves an open incident's schedule, and each is seen under the lock). Its permission is that of escalating by
    hand (comms.escalate_incident), so it gives no caller more than they have.

    Due but with no next level in its policy (the policy was shortened below its level, or deleted): it does not
    fail, it ends the schedule — one timeline entry, the people paged so far told — and says why (escalated false);
    the incident is never due again, so the next ticks do not call for it. Due but its page fails (the next level
    names a target that is gone, a connector refuses): it does not fail either; it keeps its level, is due again
    COMMS_ESCALATION_RETRY_MINUTES later and says why (escalated false). The first failure of a level, and one whose
    reason differs from the last, get a timeline entry "Escalation to level N failed: … — retrying at HH:MM" and the
    people paged so far are told; a retry failing for the same reason is only rescheduled (and audited)."""
    at = params.at or timezone.now()
    incident, why = incidents.escalate_if_due(params.incident_id, params.level, at, ctx.actor.name)
    level = incident.escalation_level if incident else 0
    return EscalateDueOutput(incident_id=params.incident_id, escalated=not why, level=level, why=why)


@operation("comms.ack_incident", risk=Risk.WRITE, target=lambda p: f"incident {p.incident_id}")
def ack_incident(ctx: Context, params: IncidentRef) -> IncidentInfo:
    """Acknowledge an open incident: its escalation stops; you become its assignee unless it has one."""
    return incident_info(incidents.acknowledge(_incident(params.incident_id), ctx.actor.name, ctx.user, comment=params.comment))


@operation("comms.resolve_incident", risk=Risk.WRITE, target=lambda p: f"incident {p.incident_id}")
def resolve_incident(ctx: Context, params: IncidentRef) -> IncidentInfo:
    """Resolve an incident (open or acknowledged): its alerts are resolved and everyone notified about it is told."""
    return incident_info(incidents.resolve(_incident(params.incident_id), ctx.actor.name, comment=params.comment))


@operation("comms.comment_incident", risk=Risk.WRITE, target=lambda p: f"incident {p.incident_id}")
def comment_incident(ctx: Context, params: CommentInput) -> IncidentInfo:
    """Add a comment to an incident's timeline and/or (re)assign it to a user (empty assign_to = nobody)."""
    incident = _incident(params.incident_id)
    if params.assign_to is not None:
        user = get_user_model().objects.filter(username=params.assign_to, is_active=True).first() if params.assign_to else None
        if params.assign_to and user is None:
            raise CommsError(f"No active user {params.assign_to}.")
        incidents.assign(incident, ctx.actor.name, user)
    if params.text:
        incidents.comment(incident, ctx.actor.name, params.text)
    return incident_info(incident)


@operation("comms.preview_route", risk=Risk.READ)
def preview_route(ctx: Context, params: RouteInput) -> RouteOutput:
    """Who gets this? The routing rules a message or alert with these attributes matches, and their targets."""
    labels = routing.effective_labels(params.labels, severity=params.severity or "", priority=params.priority or "", service=params.service)
    route = routing.route(labels)
    described = [f"{d.label} ({d.connector.kind}{' ' + d.recipient if d.recipient else ''})" for d in routing.destinations(route.targets)]
    return RouteOutput(
        rules=[r.name for r in route.rules], targets=described, escalation_policy=route.policy.name if route.policy else None,
        group_by=route.group_by,
    )  # fmt: skip


@operation("comms.resend_delivery", risk=Risk.WRITE, target=lambda p: p.delivery_id)
def resend_delivery(ctx: Context, params: ResendInput) -> DeliveryInfo:
    """Queue a failed (or retrying) delivery again now, e.g. after its connector was fixed."""
    delivery = Delivery.objects.filter(pk=params.delivery_id).first() if _is_uuid(params.delivery_id) else None
    if delivery is None:
        raise CommsError(f"No delivery {params.delivery_id}.")
    return info(dispatch.resend(delivery))


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@operation("comms.ingest_alertmanager", risk=Risk.WRITE, exposed=False, target=lambda p: p.groupKey[:300])
def ingest_alertmanager(ctx: Context, params: alertmanager.AlertmanagerPayload) -> IngestOutput:
    """Apply one Alertmanager webhook (v4): firing alerts open or update the group's incident, resolved ones resolve it."""
    incident, outcome = alertmanager.ingest(params)
    return IngestOutput(outcome=outcome, incident_id=incident.pk if incident else None)
