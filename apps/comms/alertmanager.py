"""Alertmanager's webhook (payload version 4): one POST per alert group.

Each Alertmanager group is one incident: firing alerts open it (or join it),
a group whose alerts are all resolved resolves it. Alertmanager already
grouped, deduplicated and inhibited, so its repeats (repeat_interval) only
count on the alerts; new alerts in an open group are announced.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from pydantic import BaseModel, Field

from . import incidents, routing, timeline
from .models import Alert, Incident
from .models.events import SEVERITY_RANK


class AlertmanagerAlert(BaseModel):
    status: str = Field(pattern="^(firing|resolved)$")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str = ""


class AlertmanagerPayload(BaseModel):
    """The JSON Alertmanager posts to a webhook receiver."""

    version: str = Field("4", description="Payload version; 4 since Alertmanager 0.9.")
    groupKey: str = Field(max_length=2000)
    truncatedAlerts: int = 0
    status: str = Field(pattern="^(firing|resolved)$")
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[AlertmanagerAlert] = Field(default_factory=list, max_length=1000)


def _severity(labels: dict[str, str]) -> str:
    value = labels.get("severity", "warning")
    return value if value in SEVERITY_RANK else "warning"


def _title(alert: AlertmanagerAlert) -> str:
    return alert.annotations.get("summary") or alert.labels.get("alertname", "alert")


def ingest(payload: AlertmanagerPayload, now: datetime | None = None) -> tuple[Incident | None, str]:
    """Apply one webhook; returns the incident and what happened (opened, updated, resolved, ignored)."""
    now = now or timezone.now()
    key = "am:" + hashlib.sha256(payload.groupKey.encode()).hexdigest()
    with transaction.atomic():
        incident = Incident.objects.select_for_update().filter(group_key=key).exclude(status=Incident.RESOLVED).first()
        firing = [a for a in payload.alerts if a.status == "firing"]
        if incident is None and not firing:
            return None, "ignored"  # resolved alerts of a group we never opened (or already closed)
        outcome = "updated"
        if incident is None:
            incident = _open(payload, key, firing, now)
            outcome = "opened"
        new = [_record(incident, a, now) for a in payload.alerts]
        new_firing = [a for a, is_new in zip(payload.alerts, new, strict=True) if is_new and a.status == "firing"]
        if outcome == "opened":
            incidents.flush(incident, now)
        elif new_firing:
            text = "\n".join(f"• {_title(a)}" for a in new_firing)
            message = incidents.message_for(incident, f"Incident #{incident.pk}: {len(new_firing)} new alert(s)", text, "incident.alert")
            incidents.notify(incident, list(incident.targets), message, "comms.alertmanager")
            Alert.objects.filter(incident=incident, last_notified_at__isnull=True).update(last_notified_at=now)
        if payload.status == "resolved" and not incident.alerts.filter(status=Alert.FIRING).exists():
            incidents.resolve(incident, "alertmanager", now, "every alert of the group resolved")
            outcome = "resolved"
        else:
            timeline.publish(incident)
    return incident, outcome


def _open(payload: AlertmanagerPayload, key: str, firing: list[AlertmanagerAlert], now: datetime) -> Incident:
    labels = {**payload.commonLabels}
    severity = max((_severity(a.labels) for a in firing), key=SEVERITY_RANK.__getitem__)
    route = routing.route(routing.effective_labels(labels, severity=severity))
    name = payload.groupLabels.get("alertname") or payload.commonLabels.get("alertname") or "alert group"
    title = payload.commonAnnotations.get("summary") or (f"{name} ({len(firing)} alerts)" if len(firing) > 1 else _title(firing[0]))
    incident = Incident.objects.create(
        title=title[:300], severity=severity, group_key=key, source="alertmanager",
        service=labels.get("service", labels.get("job", "")), labels=labels, targets=route.targets, policy=route.policy, opened_at=now,
        notify_due_at=now,
    )  # fmt: skip
    timeline.add(
        incident, "opened", f"Opened by Alertmanager (receiver {payload.receiver or '?'}, {len(firing)} firing)", "alertmanager", now
    )
    return incident


def _record(incident: Incident, am: AlertmanagerAlert, now: datetime) -> bool:
    """Upsert one alert of the group; True when the incident had not seen it firing before."""
    fp = am.fingerprint or routing.fingerprint(am.labels.get("alertname", ""), am.labels)
    alert = Alert.objects.filter(incident=incident, fingerprint=fp).first()
    if alert is None:
        if am.status == "resolved":
            return False
        Alert.objects.create(
            fingerprint=fp, type=am.labels.get("alertname", "alert"), severity=_severity(am.labels), title=_title(am)[:300],
            description=am.annotations.get("description", ""), labels=am.labels, incident=incident,
            first_seen=am.startsAt or now, last_seen=now,
        )  # fmt: skip
        timeline.add(incident, "alert", f"Firing: {_title(am)}", "alertmanager", now)
        return True
    if am.status == "resolved" and alert.status == Alert.FIRING:
        alert.status, alert.ends_at = Alert.RESOLVED, am.endsAt or now
        alert.save(update_fields=["status", "ends_at"])
        timeline.add(incident, "alert", f"Resolved: {_title(am)}", "alertmanager", now)
    elif am.status == "firing":
        if alert.status == Alert.RESOLVED:
            alert.status = Alert.FIRING
            timeline.add(incident, "alert", f"Firing again: {_title(am)}", "alertmanager", now)
        alert.occurrences += 1
        alert.suppressed += 1  # Alertmanager's repeat: counted, not sent again
        alert.last_seen = now
        alert.save(update_fields=["status", "occurrences", "suppressed", "last_seen"])
    return False
