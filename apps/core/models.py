from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from .fields import EncryptedJSONField


class Job(models.Model):
    """One run of a long operation on a Celery worker."""

    QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
    STATUSES = [(s, s) for s in (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)]
    FINISHED = (SUCCEEDED, FAILED, CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    operation = models.CharField(max_length=100, db_index=True)
    params = EncryptedJSONField(help_text="Validated params, encrypted: they may hold secrets.")
    params_redacted = models.JSONField(default=dict, help_text="What people may see of the params.")
    target = models.CharField(max_length=300, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    # What the requester called through (an API token, an OAuth agent), as accounts names it (Actor.credential;
    # opaque here), and the scopes it had: the job runs with no more, and not at all once it is revoked.
    credential = models.CharField(max_length=100, blank=True)
    scopes = models.JSONField(default=list, blank=True)
    channel = models.CharField(max_length=10)
    # The approval request it runs under, as approvals numbers it (opaque here: core shows it and audits the run with
    # it, never joins on it); approvals keeps its own link from a request to its jobs (apps.approvals.models.ApprovalRun).
    approval_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    request_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=10, choices=STATUSES, default=QUEUED, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.CharField(max_length=300, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    not_before = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The lease of a running job: the worker process that holds it and when it last proved alive.
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Runs started: more than one after a resume.")
    admitted = models.BooleanField(default=False, help_text="Its start checks passed (e.g. its approval claimed): a resume continues.")

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("run_read_ops", "Run read operations"),
            ("run_write_ops", "Run write operations"),
            ("request_risky_ops", "Request risky operations"),
            ("manage_connectors", "Manage connectors and their credentials"),
            ("search", "Search the console (each kind of result needs its own permission)"),
        ]

    def __str__(self) -> str:
        return f"{self.operation} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("core:job", args=[self.pk])

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class LogLine(models.Model):
    """One line of a live log (a job's, a deployment's): the subclass adds its owner."""

    at = models.DateTimeField(default=timezone.now)
    level = models.CharField(max_length=10, default="info")
    text = models.TextField()

    class Meta:
        abstract = True
        ordering = ["id"]

    def __str__(self) -> str:
        return self.text[:80]


class JobLogLine(LogLine):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="log_lines")


class Notification(models.Model):
    """A message to one user in the UI (the comms app may also deliver it elsewhere)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    text = models.CharField(max_length=300)
    link = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self) -> str:
        return self.text
