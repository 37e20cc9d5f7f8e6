"""Alerts and incidents: duplicate suppression, inhibition, grouping into
incidents, notification of the routed targets, escalation level by level
(scheduled in the database), acknowledgement and resolution.

Every function takes `now` so tests (and the beat tick) drive the clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.actors import Actor
from apps.core.errors import OpsError
from apps.core.gateway import invoke

from . import dispatch, routing, timeline
from .errors import CommsError
from .models import Alert, EscalationPolicy, Incident
from .models.events import SEVERITY_RANK
from .render import Message

log = logging.getLogger(__name__)


@dataclass
class AlertIn:
    type: str
    severity: str
    title: str
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    service: str = ""
    dedup_key: str = ""
    suppress: bool = True
    window_minutes: int | None = None
    policy: str = ""


@dataclass
class AlertOutcome:
    alert: Alert
    status: str  # notified | suppressed | inhibited | grouped
    incident: Incident | None
    targets: list[str]


def receive_alert(data: AlertIn, actor: str, now: datetime | None = None) -> AlertOutcome:
    """Record an alert; suppress a repeat inside the window, mute it if inhibited,
    else join (or open) its group's incident and notify."""
    now = now or timezone.now()
    labels = routing.effective_labels(data.labels, type=data.type, severity=data.severity, service=data.service)
    fp = routing.fingerprint(data.type, {k: v for k, v in labels.items() if k != "severity"}, data.dedup_key)
    window = timedelta(minutes=settings.COMMS_DEDUP_WINDOW_MINUTES if data.window_minutes is None else data.window_minutes)
    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(fingerprint=fp, status=Alert.FIRING).first()
        if alert is not None:
            alert.occurrences += 1
            alert.last_seen = now
            if alert.inhibited_by_id and alert.inhibited_by.status != Alert.FIRING:
                alert.inhibited_by = None  # its inhibitor resolved: this repeat is news again
                alert.last_notified_at = None
                pending = recent = False
            else:  # waiting for its group's notification, or muted
                pending = alert.last_notified_at is None
                recent = not pending and now - alert.last_notified_at < window
            if data.suppress and (pending or recent):
                alert.suppressed += 1
                alert.save(update_fields=["occurrences", "last_seen", "suppressed"])
                return AlertOutcome(alert, "suppressed", alert.incident, [])
            alert.save(update_fields=["occurrences", "last_seen", "inhibited_by", "last_notified_at"])
        else:
            alert = Alert.objects.create(
                fingerprint=fp, type=data.type, severity=data.severity, title=data.title, description=data.description,
                labels=labels, first_seen=now, last_seen=now,
            )  # fmt: skip
        source = routing.inhibiting_alert(labels, fp)
        if source is not None:
            alert.inhibited_by = source
            alert.save(update_fields=["inhibited_by"])
            return AlertOutcome(alert, "inhibited", source.incident, [])
        route = routing.route(labels)
        policy = _policy(data.policy) or route.policy
        incident = _incident_for(alert, route, policy, actor, now)
        flushed = flush(incident, now) if incident.notify_due_at and incident.notify_due_at <= now else False
        if not flushed and incident.notify_due_at is None:  # the group was notified before: tell about this alert
            _notify_alert(incident, alert, now)
            flushed = True
    return AlertOutcome(alert, "notified" if flushed else "grouped", incident, incident.targets)


def _policy(name: str) -> EscalationPolicy | None:
    if not name:
        return None
    policy = EscalationPolicy.objects.filter(name=name).first()
    if policy is None:
        raise CommsError(f"No escalation policy named {name}.")
    return policy


def _incident_for(alert: Alert, route: routing.Route, policy, actor: str, now: datetime) -> Incident:
    key = routing.group_key(route, alert.labels, alert.fingerprint)
    incident = Incident.objects.select_for_update().filter(group_key=key).exclude(status=Incident.RESOLVED).first()
    if incident is None:
        incident = Incident.objects.create(
            title=alert.title, severity=alert.severity, group_key=key, source="api", service=alert.labels.get("service", ""),
            labels=alert.labels, targets=route.targets, policy=policy, opened_at=now,
            notify_due_at=now + timedelta(seconds=route.group_wait_seconds),
        )  # fmt: skip
        timeline.add(incident, "opened", f"Opened by alert {alert.type}: {alert.title}", actor, now)
    else:
        if SEVERITY_RANK.get(alert.severity, 0) > SEVERITY_RANK.get(incident.severity, 0):
            incident.severity = alert.severity
            incident.save(update_fields=["severity"])
        timeline.add(incident, "alert", f"Alert {alert.type}: {alert.title}", actor, now)
    alert.incident = incident
    alert.save(update_fields=["incident"])
    return incident


def message_for(incident: Incident, title: str, text: str = "", event: str = "incident.update") -> Message:
    fields = {"Severity": incident.severity, "Status": incident.status}
    if incident.service:
        fields["Service"] = incident.service
    if incident.assignee_id:
        fields["Assignee"] = incident.assignee.username
    return Message(
        title=title, text=text, severity=incident.severity, link=settings.CONSOLE_BASE_URL.rstrip("/") + incident.get_absolute_url(),
        fields=fields, event=event, data={"incident": incident.pk, "status": incident.status, "labels": incident.labels},
    )  # fmt: skip


def notify(incident: Incident, targets: list[str], message: Message, origin: str) -> list:
    deliveries = dispatch.create(routing.destinations(targets), message, origin=origin, incident=incident)
    dispatch.queue(deliveries)
    return deliveries


def flush(incident: Incident, now: datetime) -> bool:
    """Send a new group's one notification (its alerts so far) and page level 1."""
    alerts = list(incident.alerts.filter(last_notified_at__isnull=True).order_by("first_seen"))
    text = "\n".join(f"• {a.title}" + (f" — {a.description}" if a.description else "") for a in alerts)
    title = f"Incident #{incident.pk}: {incident.title}" + (f" (+{len(alerts) - 1} more alerts)" if len(alerts) > 1 else "")
    targets = list(incident.targets)
    level1 = incident.policy.levels[0]["targets"] if incident.policy else []
    notify(incident, list(dict.fromkeys(targets + level1)), message_for(incident, title, text, "incident.opened"), "comms.send_alert")
    Alert.objects.filter(pk__in=[a.pk for a in alerts]).update(last_notified_at=now)
    incident.notify_due_at = None
    if incident.policy:
        incident.escalation_level = 1
        incident.next_escalation_at = _next_escalation(incident.policy, 1, now)
    incident.save(update_fields=["notify_due_at", "escalation_level", "next_escalation_at"])
    return True


def _notify_alert(incident: Incident, alert: Alert, now: datetime) -> None:
    message = message_for(incident, f"Incident #{incident.pk}: new alert {alert.title}", alert.description, "incident.alert")
    notify(incident, list(incident.targets), message, "comms.send_alert")
    alert.last_notified_at = now
    alert.save(update_fields=["last_notified_at"])


def flush_due(now: datetime | None = None) -> int:
    """Groups whose group_wait has passed get their notification."""
    now = now or timezone.now()
    count = 0
    for pk in Incident.objects.filter(notify_due_at__lte=now).exclude(status=Incident.RESOLVED).values_list("pk", flat=True):
        with transaction.atomic():
            incident = Incident.objects.select_for_update().get(pk=pk)
            if incident.notify_due_at and incident.notify_due_at <= now:
                count += flush(incident, now)
    return count


def _next_escalation(policy: EscalationPolicy, level: int, now: datetime) -> datetime | None:
    """When level+1 is due, or None at (or past) the last level: an incident there is never due again."""
    if level >= len(policy.levels):
        return None
    return now + timedelta(minutes=policy.levels[level]["after_minutes"])


def escalate(incident: Incident, actor: str, now: datetime | None = None, reason: str = "") -> Incident:
    """Page the next level of the incident's policy now."""
    now = now or timezone.now()
    if incident.status != Incident.OPEN:
        raise CommsError(f"Incident #{incident.pk} is {incident.status}: only open incidents escalate.")
    if incident.policy is None:
        raise CommsError(f"Incident #{incident.pk} has no escalation policy.")
    level = incident.escalation_level + 1
    if level > len(incident.policy.levels):
        raise CommsError(f"Incident #{incident.pk} is already at the last level ({incident.escalation_level}) of {incident.policy}.")
    targets = incident.policy.levels[level - 1]["targets"]
    with transaction.atomic():  # a page that fails (a target nobody configured) undoes the level it saved
        incident.escalation_level, incident.next_escalation_at = level, _next_escalation(incident.policy, level, now)
        incident.save(update_fields=["escalation_level", "next_escalation_at"])
        why = f": {reason}" if reason else ""
        timeline.add(incident, "escalation", f"Escalated to level {level} ({', '.join(targets)}){why}", actor, now)
        title = f"Escalated (level {level}): incident #{incident.pk} {incident.title}"
        message = message_for(incident, title, reason or "Nobody has acknowledged it yet.", "incident.escalated")
        notify(incident, targets, message, "escalation")
    return incident


def escalate_if_due(incident_id: int, level: int, now: datetime, actor: str) -> tuple[Incident | None, str]:
    """The clock's escalation of one incident (inside comms.escalate_due_incident): lock it, and escalate it from
    `level` if it is still open, still at that level and due at `now`. The incident (or None) and, when nothing
    changed, why: acknowledged, resolved or escalated meanwhile (by another tick or by hand), or not due yet. Due
    with no next level in its policy (shortened or deleted since it was scheduled), its schedule ends instead. One
    whose page fails keeps its level and is retried later (back_off), not on every tick."""
    with transaction.atomic():
        incident = Incident.objects.select_for_update(of=("self",)).select_related("policy").filter(pk=incident_id).first()
        if incident is None:
            return None, f"no incident #{incident_id}"
        if incident.status != Incident.OPEN:
            return incident, f"it is {incident.status}"
        if incident.escalation_level != level:
            return incident, f"it is at level {incident.escalation_level}, not {level}"
        if incident.next_escalation_at is None or incident.next_escalation_at > now:
            return incident, "its next level is not due"
        if stopped := _no_next_level(incident):  # its policy changed (or went) since it was scheduled
            stop_escalation(incident, stopped, actor, now)
            return incident, stopped
        try:  # a page that fails undoes the level it saved (escalate's own savepoint)
            return escalate(incident, actor, now, "not acknowledged in time"), ""
        except OpsError as exc:  # a target gone, a connector misconfigured: its message is meant for a person
            error = exc.message
        except Exception as exc:
            log.exception("incident #%s: escalating to level %s failed", incident.pk, level + 1)
            error = f"internal error: {type(exc).__name__}"  # as the gateway words it: no text that may hold a secret
        incident.refresh_from_db(fields=["escalation_level", "next_escalation_at"])
        return incident, back_off(incident, error, actor, now)


def back_off(incident: Incident, error: str, actor: str, now: datetime) -> str:
    """The clock could not page the next level: keep the level, try again COMMS_ESCALATION_RETRY_MINUTES from now
    (not every tick). A level's first failure, or one for a new reason, gets a timeline entry and whoever it paged so
    far is told (best effort); a retry failing as the last one did is only rescheduled (the gateway audits each call),
    so a lasting fault does not page anyone at every retry. The incident's last escalation entry is what they were
    last told: this failure, an earlier one, or a page or stop since (after which a failure is news again). Why, for
    the caller. The caller holds the incident's lock, in its transaction."""
    level = incident.escalation_level + 1
    incident.next_escalation_at = now + timedelta(minutes=settings.COMMS_ESCALATION_RETRY_MINUTES)
    incident.save(update_fields=["next_escalation_at"])
    retry = timezone.localtime(incident.next_escalation_at).strftime("%H:%M")
    failed = f"to level {level} failed: {error} — retrying at "
    last = incident.timeline.filter(kind="escalation").order_by("id").last()
    if last is not None and last.text.startswith(f"Escalation {failed}"):
        return f"escalation {failed}{retry} (as before: nobody told again)"
    timeline.add(incident, "escalation", f"Escalation {failed}{retry}", actor, now)
    title = f"Escalation to level {level} failed: incident #{incident.pk} {incident.title}"
    _tell_paged(incident, title, f"{error}\nRetrying at {retry}. Nobody has acknowledged it yet.", "incident.escalation_failed")
    return f"escalation {failed}{retry}"


def _no_next_level(incident: Incident) -> str:
    """Why an incident cannot escalate past its level (its policy has no next one, or it has no policy), or ""."""
    level = incident.escalation_level
    if incident.policy is None:
        return f"escalation stopped at level {level}: the incident has no escalation policy (any more)"
    if level >= len(incident.policy.levels):
        return f"escalation stopped at level {level}: policy {incident.policy} has no level {level + 1}"
    return ""


def stop_escalation(incident: Incident, why: str, actor: str, now: datetime) -> None:
    """End a schedule that cannot be honoured (no next level): the incident is never due again. One timeline entry,
    and whoever it paged so far is told (best effort: a target that is gone does not undo the stop). The caller
    holds the incident's lock, in its transaction."""
    incident.next_escalation_at = None
    incident.save(update_fields=["next_escalation_at"])
    timeline.add(incident, "escalation", why[:1].upper() + why[1:], actor, now)
    title = f"Escalation stopped (level {incident.escalation_level}): incident #{incident.pk} {incident.title}"
    _tell_paged(incident, title, f"{why[:1].upper() + why[1:]}. Nobody has acknowledged it yet.", "incident.escalation_stopped")


def _tell_paged(incident: Incident, title: str, text: str, event: str) -> None:
    """Tell the targets paged so far about the incident's escalation, best effort: a target that is gone is logged
    and does not undo what the caller recorded."""
    targets = _paged_targets(incident)
    if not targets:
        return
    try:
        with transaction.atomic():
            notify(incident, targets, message_for(incident, title, text, event), "escalation")
    except CommsError as exc:
        log.warning("incident #%s: could not tell its paged targets (%s): %s", incident.pk, event, exc.message)


def end_unreachable_schedules(policy: EscalationPolicy, actor: str, now: datetime | None = None) -> int:
    """A policy about to be saved with `policy.levels`: its open incidents already at (or past) its last level have a
    next escalation it cannot honour; end each (stop_escalation) in the caller's transaction. How many."""
    now = now or timezone.now()
    stale = Incident.objects.select_for_update().filter(
        policy_id=policy.pk, status=Incident.OPEN, next_escalation_at__isnull=False, escalation_level__gte=len(policy.levels)
    )
    count = 0
    for incident in stale.order_by("pk"):
        incident.policy = policy  # its levels as they are being saved
        stop_escalation(incident, _no_next_level(incident), actor, now)
        count += 1
    return count


def escalate_due(now: datetime | None = None) -> list[Incident]:
    """Escalate every open incident whose next level is due. Run by the beat tick: the schedule is
    `next_escalation_at` in the database, so a restarted worker picks it up. Each due incident is one gateway call
    (comms.escalate_due_incident, as the system, audited) which re-checks under a lock that it is still due; one whose
    policy has no next level has its schedule ended (once: it is not due again); one whose page fails is backed off
    (due again COMMS_ESCALATION_RETRY_MINUTES later; a timeline entry when the failure is new or its reason changed);
    a call that fails even so is logged (and audited by the gateway) and the others still escalate. The incidents
    escalated."""
    now = now or timezone.now()
    due = Incident.objects.filter(status=Incident.OPEN, next_escalation_at__lte=now).order_by("pk")
    escalated = []
    for pk, level in due.values_list("pk", "escalation_level"):
        try:
            outcome = invoke("comms.escalate_due_incident", Actor.system(), {"incident_id": pk, "level": level, "at": now}, "system")
        except OpsError as exc:
            log.warning("escalating incident #%s failed: %s", pk, exc.message)
            continue
        if outcome.result.escalated:
            escalated.append(pk)
    return list(Incident.objects.filter(pk__in=escalated).order_by("pk"))


def acknowledge(incident: Incident, actor: str, user=None, now: datetime | None = None, comment: str = "") -> Incident:
    """Stop the escalation; the acknowledger becomes the assignee unless there is one."""
    now = now or timezone.now()
    if incident.status != Incident.OPEN:
        raise CommsError(f"Incident #{incident.pk} is already {incident.status}.")
    incident.status, incident.acknowledged_at, incident.acknowledged_by = Incident.ACKNOWLEDGED, now, actor
    incident.next_escalation_at = None
    incident.assignee = incident.assignee or user
    incident.save(update_fields=["status", "acknowledged_at", "acknowledged_by", "next_escalation_at", "assignee"])
    timeline.add(incident, "ack", f"Acknowledged by {actor}{': ' + comment if comment else ''}", actor, now)
    return incident


def resolve(incident: Incident, actor: str, now: datetime | None = None, comment: str = "") -> Incident:
    now = now or timezone.now()
    if incident.status == Incident.RESOLVED:
        raise CommsError(f"Incident #{incident.pk} is already resolved.")
    with transaction.atomic():  # telling a target nobody configured fails the resolution: nothing of it stays
        incident.status, incident.resolved_at, incident.resolved_by = Incident.RESOLVED, now, actor
        incident.next_escalation_at = incident.notify_due_at = None
        incident.save(update_fields=["status", "resolved_at", "resolved_by", "next_escalation_at", "notify_due_at"])
        incident.alerts.filter(status=Alert.FIRING).update(status=Alert.RESOLVED, ends_at=now)
        timeline.add(incident, "resolve", f"Resolved by {actor}{': ' + comment if comment else ''}", actor, now)
        targets = _paged_targets(incident)
        if targets:
            notify(
                incident,
                targets,
                message_for(incident, f"Resolved: incident #{incident.pk} {incident.title}", comment, "incident.resolved"),
                "comms.resolve_incident",
            )
    return incident


def _paged_targets(incident: Incident) -> list[str]:
    """The incident's routed targets and those of every level of its policy paged so far."""
    paged = incident.policy.levels[: incident.escalation_level] if incident.policy else []
    return list(dict.fromkeys(list(incident.targets) + [t for level in paged for t in level["targets"]]))


def comment(incident: Incident, actor: str, text: str, now: datetime | None = None) -> None:
    timeline.add(incident, "comment", text, actor, now)


def assign(incident: Incident, actor: str, user, now: datetime | None = None) -> Incident:
    incident.assignee = user
    incident.save(update_fields=["assignee"])
    timeline.add(incident, "assign", f"Assigned to {user.username if user else 'nobody'}", actor, now)
    return incident
