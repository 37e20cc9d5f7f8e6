"""The audit log: append-only, hash-chained.

Each row's `hash` is an HMAC-SHA256, keyed with a key that is not in the
database (apps/audit/keys.py), over the previous row's hash and the canonical
JSON of every field of the row, so an edited, deleted or inserted row breaks
the chain from that point on and cannot be re-linked without the key;
`manage.py audit_verify` finds the first broken link and compares the head
with the newest signed anchor (which catches a cut-off tail). See docs/audit.md.
There are no foreign keys: deleting a user must never touch the log.
"""

from __future__ import annotations

from django.db import models

from apps.core.fields import EncryptedTextField


class AppendOnlyError(Exception):
    pass


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Audit events are append-only: update is refused.")

    def delete(self):
        raise AppendOnlyError("Audit events are append-only: delete is refused.")

    _raw_delete = delete


class AuditEvent(models.Model):
    OUTCOMES = [(o, o) for o in ("ok", "denied", "failed", "pending")]
    CHANNELS = [(c, c) for c in ("web", "mcp", "worker", "system")]

    seq = models.BigIntegerField(unique=True, help_text="Position in the chain; gapless.")
    at = models.DateTimeField(db_index=True)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor = models.CharField(max_length=150, blank=True)
    token_id = models.BigIntegerField(null=True, blank=True)
    token = models.CharField(max_length=120, blank=True)
    channel = models.CharField(max_length=10, choices=CHANNELS)
    operation = models.CharField(max_length=100)
    app = models.CharField(max_length=40)
    target = models.CharField(max_length=300, blank=True)
    params = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=10, choices=OUTCOMES)
    error = models.TextField(blank=True)
    duration_ms = models.FloatField(default=0)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    approval_id = models.CharField(max_length=64, blank=True)
    # One id for every event of a flow: "approval-<id>" for a request, its votes, its job and
    # its result; otherwise the originating web/MCP request id (a queued job keeps it).
    correlation_id = models.CharField(max_length=64, blank=True)
    # Set by a writer that hands its event to the appender process (apps/audit/appender.py): how
    # it finds out, after losing the appender mid-way, whether its event was committed.
    append_key = models.CharField(max_length=32, blank=True)
    key_id = models.CharField(max_length=16, blank=True, help_text="The chain key that links this event; empty = legacy SHA-256.")
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["actor", "-seq"], name="audit_actor_seq"),
            models.Index(fields=["operation", "-seq"], name="audit_op_seq"),
            models.Index(fields=["app", "-seq"], name="audit_app_seq"),
            models.Index(fields=["outcome", "-seq"], name="audit_outcome_seq"),
            models.Index(fields=["channel", "-seq"], name="audit_channel_seq"),
            models.Index(fields=["target", "-seq"], name="audit_target_seq"),
            models.Index(fields=["correlation_id", "-seq"], name="audit_correlation_seq"),
        ]
        constraints = [
            # An event handed to the appender is in the chain at most once, whoever appends it.
            models.UniqueConstraint(fields=["append_key"], condition=~models.Q(append_key=""), name="audit_append_key_once"),
        ]
        permissions = [
            ("view_audit_log", "Browse the audit log"),
            ("export_audit_log", "Export the audit log"),
            ("manage_retention", "Prune the audit log and place or lift a legal hold"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.operation} {self.outcome} by {self.actor or 'anonymous'}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Audit events are append-only: update is refused.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit events are append-only: delete is refused.")


class AuditSink(models.Model):
    """A SIEM the log is streamed to. `cursor` is the last seq it received: delivery
    walks the chain in order from there, so nothing is skipped and order is kept."""

    SYSLOG, HTTPS = "syslog", "https"
    KINDS = [(SYSLOG, "syslog (RFC 5424 over TCP)"), (HTTPS, "HTTPS (JSON lines)")]
    FORMATS = [("ocsf", "OCSF"), ("cef", "CEF")]

    name = models.SlugField(max_length=50, unique=True)
    kind = models.CharField(max_length=10, choices=KINDS)
    address = models.CharField(max_length=300, help_text="https://host[:port]/path, or host:port for syslog.")
    format = models.CharField(max_length=10, choices=FORMATS, default="ocsf")
    tls = models.BooleanField(default=True, help_text="Syslog over TLS (HTTPS sinks always use TLS).")
    ca_pem = models.TextField(blank=True, help_text="PEM certificate(s) to trust instead of the system's CAs.")
    token = EncryptedTextField(blank=True, help_text="HTTPS bearer token; write-only.")
    enabled = models.BooleanField(default=True)
    cursor = models.BigIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0, help_text="Consecutive failed deliveries.")
    last_error = models.TextField(blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        permissions = [("manage_audit_sinks", "Configure where the audit log is streamed")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind} {self.format})"


class Prune(models.Model):
    """Events up to `through_seq` were removed by audit.prune; the chain now starts from
    `anchor`, the signed head at `through_seq` (verify.py checks its signature)."""

    through_seq = models.BigIntegerField(unique=True)
    anchor = models.JSONField()
    at = models.DateTimeField()
    by = models.CharField(max_length=150)

    class Meta:
        ordering = ["-through_seq"]

    def __str__(self) -> str:
        return f"pruned through #{self.through_seq} by {self.by}"


class LegalHold(models.Model):
    """Each change of the legal hold is a row; the newest says whether pruning is stopped."""

    active = models.BooleanField()
    reason = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField()
    by = models.CharField(max_length=150)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"legal hold {'placed' if self.active else 'lifted'} by {self.by}: {self.reason}"

    @classmethod
    def current(cls) -> LegalHold | None:
        return cls.objects.order_by("-id").first()


class RetiredChainKey(models.Model):
    """A chain key the chain has changed away from (the `from` of an audit.chain_key event). A database
    trigger (migration 0007) fills it and refuses a key change back to any key in it, so a process still
    running an old key ring never links new events with a retired key. It is a guard for honest writers,
    not evidence: an insider can empty it, and audit_verify refuses such events on its own."""

    key_id = models.CharField(max_length=16, primary_key=True)

    def __str__(self) -> str:
        return f"retired chain key {self.key_id}"
