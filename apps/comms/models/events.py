"""What happens: alerts, incidents and their timelines, deliveries (the delivery
log) and the posted status messages that can be edited in place."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


class Incident(models.Model):
    OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"
    STATUSES = [(s, s) for s in (OPEN, ACKNOWLEDGED, RESOLVED)]

    title = models.CharField(max_length=300)
    severity = models.CharField(max_length=10, default="warning")
    status = models.CharField(max_length=15, choices=STATUSES, default=OPEN, db_index=True)
    group_key = models.CharField(max_length=300, db_index=True, help_text="Alerts with this key join this incident while open.")
    source = models.CharField(max_length=20, default="api", help_text="api, alertmanager or manual.")
    service = models.CharField(max_length=100, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    targets = models.JSONField(default=list, blank=True, help_text="Target names notified about this incident.")
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    policy = models.ForeignKey("comms.EscalationPolicy", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    escalation_level = models.PositiveSmallIntegerField(default=0, help_text="Highest level paged (1 = first); 0 = none.")
    # The schedule lives here, not in a worker's memory: the beat tick escalates what is due.
    next_escalation_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # A new group waits (group_wait) to collect its alerts into one notification.
    notify_due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    opened_at = models.DateTimeField(default=timezone.now, db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        indexes = [models.Index(fields=["group_key", "status"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("comms:incident", args=[self.pk])


class TimelineEntry(models.Model):
    KINDS = ["opened", "alert", "notification", "escalation", "ack", "comment", "assign", "resolve", "reopen"]

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="timeline")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=15, choices=[(k, k) for k in KINDS])
    text = models.TextField()
    actor = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.text[:60]}"


class Alert(models.Model):
    """One distinct alert (by fingerprint). Repeats within the suppression window
    are counted here instead of being sent again."""

    FIRING, RESOLVED = "firing", "resolved"

    fingerprint = models.CharField(max_length=64, db_index=True)
    type = models.CharField(max_length=100)
    severity = models.CharField(max_length=10, default="warning")
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    labels = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, default=FIRING, db_index=True)
    inhibited_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    incident = models.ForeignKey(Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    occurrences = models.PositiveIntegerField(default=1)
    suppressed = models.PositiveIntegerField(default=0, help_text="Repeats not sent because they fell in the window.")
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen"]
        indexes = [models.Index(fields=["fingerprint", "status"])]

    def __str__(self) -> str:
        return f"{self.type}: {self.title}"


class Delivery(models.Model):
    """One message to one recipient through one connector: the delivery log."""

    QUEUED, SENDING, SENT, RETRYING, FAILED = "queued", "sending", "sent", "retrying", "failed"
    STATUSES = [(s, s) for s in (QUEUED, SENDING, SENT, RETRYING, FAILED)]

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    connector = models.ForeignKey("comms.Connector", null=True, on_delete=models.SET_NULL, related_name="deliveries")
    kind = models.CharField(max_length=10)
    target = models.CharField(max_length=60, blank=True, help_text="The target name, when sent to a named target.")
    recipient = models.CharField(max_length=200, blank=True)
    title = models.CharField(max_length=300)
    message = models.JSONField(help_text="The message as rendered for every channel (never holds credentials).")
    origin = models.CharField(max_length=100, help_text="What sent it: an operation, an escalation, a notification.")
    status_key = models.CharField(max_length=200, blank=True, help_text="Posted Slack messages with a key can be edited later.")
    incident = models.ForeignKey(Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries")
    status = models.CharField(max_length=10, choices=STATUSES, default=QUEUED, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    note = models.CharField(max_length=300, blank=True, help_text="e.g. rate limited and retried.")
    outcome_unknown = models.BooleanField(
        default=False, help_text="An attempt timed out after sending: the peer may have it (stays set once set)."
    )
    external_id = models.CharField(max_length=200, blank=True, help_text="Slack ts, Twilio SID, SMTP Message-ID.")

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.kind} → {self.recipient or self.target}: {self.status}"


class StatusMessage(models.Model):
    """A posted Slack message that later updates edit in place (chat.update)."""

    key = models.CharField(max_length=200, db_index=True, help_text='e.g. "deployment:42".')
    connector = models.ForeignKey("comms.Connector", on_delete=models.CASCADE, related_name="+")
    recipient = models.CharField(max_length=200, help_text="The channel as it was addressed (#deploys or an id).")
    channel = models.CharField(max_length=100, help_text="The Slack channel id the message lives in.")
    ts = models.CharField(max_length=40, help_text="Slack's message timestamp (its id).")
    text = models.TextField(blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    reported_at = models.DateTimeField(default=timezone.now, help_text="When the shown update was reported; older ones are skipped.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "connector", "recipient"], name="one_status_message_per_channel")]

    def __str__(self) -> str:
        return f"{self.key} in {self.channel}"
