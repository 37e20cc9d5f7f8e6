"""Alerts (from Prometheus and Alertmanager) and Alertmanager silences (API v2)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from django.utils import timezone
from pydantic import BaseModel, Field

from apps.core.errors import PeerUnavailable
from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from .common import LABEL_NAME_PATTERN, SourceInput, Time, alertmanager, get_source, parse_time, prometheus

AlertState = Literal["any", "firing", "pending", "active", "suppressed", "unprocessed"]


class AlertsInput(SourceInput):
    origin: Literal["both", "prometheus", "alertmanager"] = Field(
        "both", description="Prometheus' rule alerts (firing/pending), Alertmanager's alerts (active/suppressed), or both."
    )
    state: AlertState = Field("any", description="firing/pending (Prometheus); active/suppressed/unprocessed (Alertmanager).")
    severity: str | None = Field(None, max_length=60, description="Only alerts whose severity label is this.")


class Alert(BaseModel):
    origin: str
    name: str
    state: str
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]
    since: datetime | None = Field(description="Prometheus: active since; Alertmanager: starts at.")
    value: str | None = Field(None, description="The rule's value when evaluated (Prometheus only).")
    silenced_by: list[str] = Field(default_factory=list)
    fingerprint: str = ""


class AlertsOutput(BaseModel):
    alerts: list[Alert]
    problems: list[str] = Field(description="Peers that could not be asked, and why.")


def prometheus_alerts(source: str) -> list[Alert]:
    data = prometheus(source).api("alerts")
    return [
        Alert(
            origin="prometheus",
            name=a["labels"].get("alertname", ""),
            state=a["state"],
            severity=a["labels"].get("severity", ""),
            labels=a["labels"],
            annotations=a.get("annotations") or {},
            since=parse_time(a.get("activeAt")),
            value=a.get("value"),
        )
        for a in data.get("alerts", [])
    ]


def alertmanager_alerts(source: str) -> list[Alert]:
    return [
        Alert(
            origin="alertmanager",
            name=a["labels"].get("alertname", ""),
            state=a["status"]["state"],
            severity=a["labels"].get("severity", ""),
            labels=a["labels"],
            annotations=a.get("annotations") or {},
            since=parse_time(a.get("startsAt")),
            silenced_by=a["status"].get("silencedBy") or [],
            fingerprint=a.get("fingerprint", ""),
        )
        for a in alertmanager(source).alerts()
    ]


@operation("monitoring.alerts", risk=Risk.READ, target=lambda p: f"{p.source}: {p.origin} {p.state}")
def alerts(ctx: Context, params: AlertsInput) -> AlertsOutput:
    """List alerts from Prometheus (rule state firing/pending) and from Alertmanager (active/suppressed by a silence).

    Filter by state and severity label. With origin "both", an Alertmanager that is
    missing or down is reported in `problems` and Prometheus' alerts still come back.
    """
    found, problems = [], []
    if params.origin in ("both", "prometheus"):
        found += prometheus_alerts(params.source)
    if params.origin in ("both", "alertmanager"):
        if params.origin == "both" and not get_source(params.source).alertmanager_url:
            problems.append(f"Source {params.source!r} has no Alertmanager.")
        else:
            try:
                found += alertmanager_alerts(params.source)
            except PeerUnavailable as exc:
                if params.origin == "alertmanager":
                    raise
                problems.append(exc.message)
    if params.state != "any":
        found = [a for a in found if a.state == params.state]
    if params.severity:
        found = [a for a in found if a.severity == params.severity]
    found.sort(key=lambda a: (a.origin, a.name, sorted(a.labels.items())))
    return AlertsOutput(alerts=found, problems=problems)


class Matcher(BaseModel):
    name: str = Field(pattern=LABEL_NAME_PATTERN, max_length=100)
    value: str = Field(max_length=1000)
    is_regex: bool = False
    is_equal: bool = True

    def __str__(self) -> str:
        op = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}[(self.is_regex, self.is_equal)]
        return f"{self.name}{op}{self.value!r}"


class Silence(BaseModel):
    id: str
    state: str = Field(description="active, pending or expired")
    matchers: list[Matcher]
    starts_at: datetime | None
    ends_at: datetime | None
    created_by: str
    comment: str


class SilencesInput(SourceInput):
    state: Literal["any", "active", "pending", "expired"] = "active"


class SilencesOutput(BaseModel):
    silences: list[Silence]


def _silence(item: dict) -> Silence:
    return Silence(
        id=item["id"],
        state=item["status"]["state"],
        matchers=[
            Matcher(name=m["name"], value=m["value"], is_regex=m.get("isRegex", False), is_equal=m.get("isEqual", True))
            for m in item["matchers"]
        ],
        starts_at=parse_time(item.get("startsAt")),
        ends_at=parse_time(item.get("endsAt")),
        created_by=item.get("createdBy", ""),
        comment=item.get("comment", ""),
    )


@operation("monitoring.silences", risk=Risk.READ, target=lambda p: f"{p.source}: {p.state} silences")
def silences(ctx: Context, params: SilencesInput) -> SilencesOutput:
    """List Alertmanager silences (default: active ones), newest end first."""
    found = [_silence(s) for s in alertmanager(params.source).silences()]
    if params.state != "any":
        found = [s for s in found if s.state == params.state]
    found.sort(key=lambda s: s.ends_at or timezone.now(), reverse=True)
    return SilencesOutput(silences=found)


class SilenceCreateInput(SourceInput):
    matchers: list[Matcher] = Field(
        min_length=1,
        max_length=20,
        description='Which alerts to silence, e.g. [{"name": "alertname", "value": "DiskFull"}, {"name": "instance", "value": "db1"}].',
    )
    duration_minutes: int = Field(120, ge=1, le=60 * 24 * 30, description="How long, from starts_at.")
    starts_at: Time = Field(None, description="Default: now.")
    comment: str = Field(min_length=3, max_length=1000, description="Why (shown to everyone who sees the silence).")


class SilenceCreateOutput(BaseModel):
    silence_id: str
    starts_at: datetime
    ends_at: datetime


def _silence_target(p) -> str:
    return f"{p.source}: " + ", ".join(str(m) for m in p.matchers)


@operation("monitoring.silence_create", risk=Risk.WRITE, idempotent=False, target=_silence_target)
def silence_create(ctx: Context, params: SilenceCreateInput) -> SilenceCreateOutput:
    """Silence alerts in Alertmanager: matching alerts stop notifying for the duration. Recorded as created by the caller."""
    starts = params.starts_at or timezone.now()
    ends = starts + timedelta(minutes=params.duration_minutes)
    body = {
        "matchers": [{"name": m.name, "value": m.value, "isRegex": m.is_regex, "isEqual": m.is_equal} for m in params.matchers],
        "startsAt": starts.isoformat(),
        "endsAt": ends.isoformat(),
        "createdBy": ctx.actor.name,
        "comment": params.comment,
    }
    silence_id = alertmanager(params.source).create_silence(body)
    return SilenceCreateOutput(silence_id=silence_id, starts_at=starts, ends_at=ends)


class SilenceExpireInput(SourceInput):
    silence_id: str = Field(pattern=r"^[0-9a-fA-F-]{36}$", description="The silence's id (a UUID).")


class SilenceExpireOutput(BaseModel):
    silence_id: str
    expired: bool


@operation("monitoring.silence_expire", risk=Risk.WRITE, target=lambda p: f"{p.source}: silence {p.silence_id}")
def silence_expire(ctx: Context, params: SilenceExpireInput) -> SilenceExpireOutput:
    """Expire (end now) an Alertmanager silence: its alerts notify again."""
    alertmanager(params.source).expire_silence(params.silence_id)
    return SilenceExpireOutput(silence_id=params.silence_id, expired=True)
