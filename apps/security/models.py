"""What the security app stores: scan roots, uploads, scans, findings (one model
for every kind) with their triage history, and the local OSV advisory set."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

# "unknown": an advisory with no CVSS vector and no rating of its own (ranked with medium, never silently made one).
SEVERITIES = ["critical", "high", "medium", "unknown", "low", "info"]
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}


class ScanRoot(models.Model):
    """A server-side directory an admin allows scans under. Nothing outside it is read."""

    name = models.SlugField(max_length=60, unique=True)
    path = models.CharField(max_length=500, help_text="Absolute path on the console's server.")
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        permissions = [("manage_scan_roots", "Configure the directories scans may read")]

    def __str__(self) -> str:
        return f"{self.name} ({self.path})"


class Upload(models.Model):
    """A file or archive uploaded for scanning; kept on disk under SECURITY_UPLOAD_DIR."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def stored_path(self):
        from pathlib import Path

        return Path(settings.SECURITY_UPLOAD_DIR) / str(self.id)


class Scan(models.Model):
    """One run of a scanner over one target. Its id is the job's id when it ran as a job."""

    RUNNING, DONE, FAILED = "running", "done", "failed"
    KINDS = [(k, k) for k in ("secrets", "dependencies", "source", "image")]

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job = models.OneToOneField("core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="security_scan")
    kind = models.CharField(max_length=20, choices=KINDS)
    target = models.CharField(max_length=300, help_text="What was scanned: root:path, upload:name, git:root/path, image:ref.")
    status = models.CharField(max_length=10, default=RUNNING, db_index=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    stats = models.JSONField(default=dict, blank=True, help_text="Files, bytes, skipped (by reason), new/fixed counts.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.kind} scan of {self.target}"

    def get_absolute_url(self) -> str:
        return reverse("security:scan", args=[self.pk])


class Finding(models.Model):
    """One problem, the same across scans: identified by its fingerprint."""

    OPEN, TRIAGED, ACCEPTED, FALSE_POSITIVE, FIXED = "open", "triaged", "accepted", "false_positive", "fixed"
    STATUSES = [(OPEN, "open"), (TRIAGED, "triaged"), (ACCEPTED, "accepted risk"), (FALSE_POSITIVE, "false positive"), (FIXED, "fixed")]
    ACTIVE = (OPEN, TRIAGED)
    KINDS = Scan.KINDS

    fingerprint = models.CharField(max_length=64, unique=True, help_text="Identity across scans (hash of target, rule, location, content).")
    kind = models.CharField(max_length=20, choices=KINDS, db_index=True)
    target = models.CharField(max_length=300, db_index=True)
    rule = models.CharField(max_length=100, db_index=True)
    title = models.CharField(max_length=300)
    severity = models.CharField(max_length=10, choices=[(s, s) for s in SEVERITIES], db_index=True)
    path = models.CharField(max_length=1000, blank=True)
    line = models.PositiveIntegerField(null=True, blank=True)
    commit = models.CharField(max_length=64, blank=True, help_text="Git history scans: a commit that holds the blob.")
    preview = models.CharField(max_length=300, blank=True, help_text="Masked: never the full secret.")
    secret_hash = models.CharField(max_length=64, blank=True, help_text="Keyed hash of the secret (HMAC-SHA256), for baselines.")
    example = models.BooleanField(default=False, help_text="A documentation placeholder rather than a live credential.")
    owasp = models.CharField(max_length=80, blank=True)
    cwe = models.CharField(max_length=20, blank=True)
    package = models.CharField(max_length=200, blank=True)
    version = models.CharField(max_length=100, blank=True)
    fixed_in = models.CharField(max_length=100, blank=True)
    aliases = models.JSONField(default=list, blank=True)
    detail = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=STATUSES, default=OPEN, db_index=True)
    accepted_until = models.DateTimeField(null=True, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="security_findings"
    )
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)
    first_scan = models.ForeignKey(Scan, null=True, on_delete=models.SET_NULL, related_name="+")
    last_scan = models.ForeignKey(Scan, null=True, on_delete=models.SET_NULL, related_name="findings")
    verification = models.CharField(
        max_length=10, blank=True, help_text="Secrets: live (the provider accepted it), invalid, or unknown, from security.verify_secret."
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    exception = models.ForeignKey(
        "AdvisoryException",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="findings",
        help_text="The exception it is accepted under.",
    )
    severity_rank = models.PositiveSmallIntegerField(default=0, db_index=True)

    class Meta:
        ordering = ["severity_rank", "-last_seen", "id"]
        indexes = [models.Index(fields=["status", "severity_rank"]), models.Index(fields=["target", "kind", "status"])]
        permissions = [("triage_findings", "Triage security findings (status, assignee, accepted risk)")]

    def __str__(self) -> str:
        return f"{self.rule} in {self.location}"

    def save(self, *args, **kwargs):
        self.severity_rank = SEVERITY_RANK.get(self.severity, len(SEVERITIES))
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("security:finding", args=[self.pk])

    @property
    def location(self) -> str:
        where = self.path or self.package or self.target
        return f"{where}:{self.line}" if self.line else where

    @property
    def remediation(self) -> str:
        if self.kind == "dependencies" and self.fixed_in:
            return f"Upgrade {self.package} to {self.fixed_in} or later."
        if self.kind == "dependencies":
            return f"No fixed version of {self.package} is known: remove it or mitigate."
        if self.kind == "secrets":
            return "Revoke and rotate the credential, then remove it from the code and its history."
        return ""


class FindingComment(models.Model):
    """A note on a finding; status changes are recorded here too."""

    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    text = models.TextField(blank=True)
    status_from = models.CharField(max_length=20, blank=True)
    status_to = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.text[:80]


class Advisory(models.Model):
    """An OSV record from the local advisory set."""

    id = models.CharField(max_length=100, primary_key=True)
    summary = models.TextField(blank=True)
    details = models.TextField(blank=True)
    aliases = models.JSONField(default=list, blank=True)
    severity = models.CharField(max_length=10, blank=True, help_text="critical/high/medium/low from CVSS or the database's rating.")
    cvss_vector = models.CharField(max_length=200, blank=True)
    cvss_score = models.FloatField(null=True, blank=True)
    cwe_ids = models.JSONField(default=list, blank=True)
    published = models.DateTimeField(null=True, blank=True)
    modified = models.DateTimeField(null=True, blank=True)
    withdrawn = models.DateTimeField(null=True, blank=True)
    references = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=40, blank=True, db_index=True, help_text="The feed it came from: an ecosystem (PyPI, npm).")

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "advisories"

    def __str__(self) -> str:
        return self.id


class AffectedPackage(models.Model):
    """One `affected` entry of an advisory: a package and its ranges/versions."""

    advisory = models.ForeignKey(Advisory, on_delete=models.CASCADE, related_name="affected")
    ecosystem = models.CharField(max_length=40)
    name = models.CharField(max_length=200, help_text="Normalised: PEP 503 for PyPI, as published for npm.")
    ranges = models.JSONField(default=list)
    versions = models.JSONField(default=list)

    class Meta:
        indexes = [models.Index(fields=["ecosystem", "name"])]

    def __str__(self) -> str:
        return f"{self.ecosystem}/{self.name} ({self.advisory_id})"


class AdvisoryFeed(models.Model):
    """Where one ecosystem's advisories came from and how fresh they are (the shipped snapshot or OSV's export)."""

    SNAPSHOT, OSV = "snapshot", "osv"

    ecosystem = models.CharField(max_length=40, unique=True)
    origin = models.CharField(max_length=10, default=SNAPSHOT)
    url = models.CharField(max_length=500, blank=True)
    etag = models.CharField(max_length=200, blank=True)
    last_modified = models.CharField(
        max_length=100, blank=True, help_text="The export's Last-Modified header, sent back as If-Modified-Since."
    )
    records = models.PositiveIntegerField(default=0)
    data_as_of = models.DateTimeField(null=True, blank=True, help_text="The newest record's modification time.")
    fresh_at = models.DateTimeField(
        null=True, blank=True, help_text="When the data was last known current (download, 304, or the snapshot's date)."
    )
    checked_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="Why the last sync failed (the data before it is kept).")

    class Meta:
        ordering = ["ecosystem"]

    def __str__(self) -> str:
        return f"{self.ecosystem} ({self.origin})"


class AdvisoryException(models.Model):
    """An accepted vulnerability, scoped: one vulnerability in one package (optionally versions and paths), until it expires."""

    vulnerability = models.CharField(max_length=100, help_text="The advisory id or any alias (CVE, GHSA, PYSEC).")
    aliases = models.JSONField(default=list, blank=True, help_text="Every id of the vulnerability, resolved when it was created.")
    ecosystem = models.CharField(max_length=40)
    package = models.CharField(max_length=200, help_text="Normalised name.")
    versions = models.CharField(max_length=200, help_text="Comparisons the version must meet, e.g. '==2.30.0' or '>=2.0,<2.31'.")
    path = models.CharField(max_length=500, blank=True, help_text="Glob of lockfile paths; '' = every lockfile.")
    reason = models.TextField()
    expires_at = models.DateTimeField()
    severity = models.CharField(max_length=10, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["ecosystem", "package"])]

    def __str__(self) -> str:
        return f"{self.vulnerability} in {self.package} {self.versions}"
