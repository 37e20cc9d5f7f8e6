"""Inputs and outputs of the comms operations (web forms, MCP schemas, audit)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from django.utils import timezone
from pydantic import AwareDatetime, BaseModel, Field, field_validator

Severity = Literal["info", "warning", "critical"]
Priority = Literal["low", "normal", "high", "urgent"]
ChannelKind = Literal["slack", "teams", "email", "sms", "webhook"]
DeploymentStatus = Literal["started", "progress", "succeeded", "failed", "rolled_back", "cancelled"]
TEXT = {"widget": "textarea"}


class DeliveryInfo(BaseModel):
    id: str
    target: str = Field(description="Target name, or empty for a direct message.")
    kind: str
    recipient: str
    status: str = Field(description="queued, sending, sent, retrying (a later attempt is scheduled) or failed.")
    attempts: int
    error: str
    note: str = Field(description="e.g. that a rate limit was waited out.")
    outcome_unknown: bool = Field(description="An attempt timed out after sending: the peer may have received it (a retry may repeat it).")
    external_id: str = Field(description="Slack channel/ts, Twilio message SID or email Message-ID.")


class DeliveriesOutput(BaseModel):
    deliveries: list[DeliveryInfo]
    routed_by: list[str] = Field(default_factory=list, description="Routing rules that chose the targets.")


class SendNotificationInput(BaseModel):
    title: str = Field(max_length=300)
    message: str = Field("", max_length=10000, json_schema_extra=TEXT)
    channels: list[str] = Field(
        default_factory=list, description="Target names (see comms.preview_route); empty = the routing rules decide."
    )
    priority: Priority = "normal"
    severity: Severity | None = None
    metadata: dict[str, str] = Field(default_factory=dict, description="Labels for routing (service, team, …), shown as fields.")
    link: str = Field("", max_length=500)


class PostMessageInput(BaseModel):
    channel_type: ChannelKind
    recipient: str = Field(
        "", max_length=200, description="#channel or channel id, email address, phone number (+E.164); empty for Teams/webhook."
    )
    title: str = Field(max_length=300)
    text: str = Field("", max_length=10000, json_schema_extra=TEXT)
    connector: str = Field("", description="Connector name; empty = the only enabled connector of that type.")
    status_key: str = Field("", max_length=200, description="Slack only: a key to edit this message later with comms.update_status.")


class PostMessageOutput(BaseModel):
    delivery: DeliveryInfo


class SendAlertInput(BaseModel):
    type: str = Field(max_length=100, description="What kind of alert, e.g. HighErrorRate; part of the duplicate fingerprint.")
    severity: Severity
    title: str = Field(max_length=300)
    description: str = Field("", max_length=10000, json_schema_extra=TEXT)
    service: str = Field("", max_length=100)
    labels: dict[str, str] = Field(default_factory=dict, description="Routing/grouping labels; with type, the fingerprint.")
    escalation_policy: str = Field("", description="Escalation policy name; empty = the routing rule's policy, if any.")
    dedup_key: str = Field("", max_length=200, description="Use this as the fingerprint instead of type + labels.")
    suppress: bool = Field(True, description="Count repeats within the window on the original instead of sending them.")
    window_minutes: int | None = Field(None, ge=0, le=1440, description="Suppression window; default COMMS_DEDUP_WINDOW_MINUTES.")


class SendAlertOutput(BaseModel):
    status: str = Field(description="notified, grouped (waits for its group's notification), suppressed (a repeat) or inhibited.")
    alert_id: int
    fingerprint: str
    occurrences: int
    suppressed: int = Field(description="Repeats counted on this alert and not sent.")
    incident_id: int | None
    incident_url: str = ""
    targets: list[str]


class ConnectorChoice(BaseModel):
    connector: str = Field("", description="Slack connector name; empty = the only enabled Slack connector.")


class CreateChannelInput(ConnectorChoice):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,79}$", description="Lower case, digits, - and _.")
    private: bool = False


class ChannelInfo(BaseModel):
    id: str
    name: str
    is_private: bool = False
    is_archived: bool = False
    num_members: int | None = None


class ListChannelsInput(ConnectorChoice):
    types: str = Field("public_channel", pattern=r"^(public_channel|private_channel)(,(public_channel|private_channel))?$")
    exclude_archived: bool = True
    limit: int = Field(1000, ge=1, le=10000, description="Stop after this many channels.")


class ListChannelsOutput(BaseModel):
    channels: list[ChannelInfo]
    count: int


class UpdateStatusInput(BaseModel):
    key: str = Field(max_length=200, description="The status_key the message was posted with (deployments: deployment:<id>).")
    title: str = Field(max_length=300)
    text: str = Field("", max_length=10000, json_schema_extra=TEXT)
    severity: Severity | None = None


class UpdateStatusOutput(BaseModel):
    updated: list[str] = Field(description="channel/ts of each edited message.")


class DeploymentInput(BaseModel):
    deployment_id: str = Field(max_length=100)
    url: str = Field("", max_length=500, description="The deployment's page.")
    service: str = Field(max_length=100)
    environment: str = Field(max_length=50)
    revision: str = Field("", max_length=100)
    strategy: str = Field("", max_length=30, description="rolling, canary, blue-green, recreate …")
    status: DeploymentStatus
    step: str = Field("", max_length=500, description="What is happening now, e.g. 'canary 25%: error rate 0.1%'.")
    progress: int | None = Field(None, ge=0, le=100)
    targets: list[str] = Field(default_factory=list, description="Target names; empty = rules matching type=deployment.")
    reported_at: datetime = Field(default_factory=timezone.now, description="Older reports than the one shown are skipped.")


class DeploymentOutput(BaseModel):
    posted: int = Field(description="New Slack status messages.")
    updated: int = Field(description="Slack status messages edited in place.")
    deliveries: list[DeliveryInfo] = Field(description="Messages sent (Slack posts; other channels on start and result only).")
    skipped: str = ""


class IncidentRef(BaseModel):
    incident_id: int
    comment: str = Field("", max_length=2000)


class EscalateInput(BaseModel):
    incident_id: int
    reason: str = Field("", max_length=500)


# How far a tick's time may be ahead of the clock of the process that runs the escalation: none in the tick
# itself (it reads the clock, then calls), a little for clocks of two hosts.
TICK_SKEW = timedelta(seconds=10)


class EscalateDueInput(BaseModel):
    incident_id: int
    level: int = Field(ge=0, description="The level the incident was at when the tick found it due: it escalates from this level only.")
    at: AwareDatetime | None = Field(None, description="The tick's time (default: now); never ahead of the console's clock.")

    @field_validator("at")
    @classmethod
    def _not_ahead_of_the_clock(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            raise ValueError("not a time the console can store") from None
        if value > timezone.now() + TICK_SKEW:
            raise ValueError("the tick's time may not be ahead of the console's clock (nothing escalates before it is due)")
        return value


class EscalateDueOutput(BaseModel):
    incident_id: int
    escalated: bool = Field(
        description="False when it was no longer due (acknowledged, resolved or escalated meanwhile), or when its policy "
        "has no next level: then its schedule ends."
    )
    level: int = Field(description="The incident's escalation level after the call.")
    why: str = Field("", description="Why nothing changed, when nothing did.")


class CommentInput(BaseModel):
    incident_id: int
    text: str = Field("", max_length=4000, json_schema_extra=TEXT)
    assign_to: str | None = Field(None, description="Username to assign; empty string = unassign.")


class IncidentInfo(BaseModel):
    id: int
    title: str
    status: str
    severity: str
    escalation_level: int
    next_escalation_at: datetime | None
    assignee: str | None
    acknowledged_by: str
    resolved_by: str
    alerts: int
    url: str


class IncidentId(BaseModel):
    incident_id: int


class TimelineItem(BaseModel):
    at: datetime
    kind: str
    text: str
    actor: str


class IncidentTimeline(IncidentInfo):
    timeline: list[TimelineItem] = Field(description="Oldest first; the latest 500 entries.")


class RouteInput(BaseModel):
    severity: Severity | None = None
    priority: Priority | None = None
    service: str = ""
    labels: dict[str, str] = Field(default_factory=dict)


class RouteOutput(BaseModel):
    rules: list[str]
    targets: list[str] = Field(description="Target names, in order, with their connector and recipient.")
    escalation_policy: str | None
    group_by: list[str]


class ResendInput(BaseModel):
    delivery_id: str


class IngestOutput(BaseModel):
    outcome: str = Field(description="opened, updated, resolved or ignored.")
    incident_id: int | None
