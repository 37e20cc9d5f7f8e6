from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.core.fields import EncryptedTextField


class Connection(models.Model):
    """An S3-compatible endpoint the console talks to (AWS, MinIO, Ceph, Wasabi, GCS interop).

    Credentials come from the environment (boto3's chain, or `<env_prefix>_ACCESS_KEY_ID`
    and `<env_prefix>_SECRET_ACCESS_KEY`) or are stored here encrypted; stored ones are
    never rendered back.
    """

    ENVIRONMENT, STORED = "environment", "stored"
    CREDENTIAL_SOURCES = [(ENVIRONMENT, "environment"), (STORED, "stored (encrypted)")]
    ADDRESSING_STYLES = [("auto", "auto"), ("path", "path"), ("virtual", "virtual")]
    ENCRYPTIONS = [("", "none"), ("AES256", "AES256 (SSE-S3)"), ("aws:kms", "aws:kms (SSE-KMS)")]

    name = models.SlugField(max_length=50, unique=True)
    endpoint_url = models.URLField(blank=True, help_text="Empty for AWS.")
    region = models.CharField(max_length=40, default="us-east-1")
    addressing_style = models.CharField(max_length=10, choices=ADDRESSING_STYLES, default="auto")
    credentials = models.CharField(max_length=12, choices=CREDENTIAL_SOURCES, default=ENVIRONMENT)
    env_prefix = models.CharField(max_length=60, blank=True, help_text="Read <PREFIX>_ACCESS_KEY_ID / <PREFIX>_SECRET_ACCESS_KEY.")
    access_key_id = EncryptedTextField(blank=True)
    secret_access_key = EncryptedTextField(blank=True)
    default_encryption = models.CharField(max_length=10, choices=ENCRYPTIONS, blank=True)
    kms_key_id = models.CharField(max_length=300, blank=True)
    verify_tls = models.BooleanField(default=True)
    direct_uploads = models.BooleanField(
        default=False,
        help_text="Browsers upload straight to the endpoint with presigned URLs; needs a CORS rule allowing the console's origin.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [("download_objects", "Download objects (presigned URL or through the console)")]

    def __str__(self) -> str:
        return self.name

    @property
    def has_stored_credentials(self) -> bool:
        return bool(self.access_key_id and self.secret_access_key)


class MultipartUpload(models.Model):
    """A multipart upload the console started and has not completed or aborted yet.

    A row outlives its upload only when the abort itself failed (the endpoint was
    down) or the process died; `storage.abort_stale_uploads` aborts those, so no
    parts stay orphaned (and billed) on the endpoint."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="+")
    bucket = models.CharField(max_length=63)
    key = models.TextField()
    upload_id = models.CharField(max_length=1024)
    # A direct upload (the browser sends the parts): its announced size and part size, checked on completion.
    size = models.BigIntegerField(null=True, blank=True)
    part_size = models.BigIntegerField(null=True, blank=True)
    # The classification it is written with: checked again against the object there when it completes.
    classification = models.CharField(max_length=20, blank=True)
    # Who began a direct upload: only they sign its parts, complete or abort it (anyone else who learnt its
    # UploadId could otherwise put their bytes under the uploader's name, or abort it). A deleted user's
    # upload is left to storage.abort_stale_uploads.
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField(default=timezone.now)
    # A direct upload is alive while its parts are being signed: a large one may outlast STORAGE_STALE_UPLOAD_HOURS.
    signed_at = models.DateTimeField(null=True, blank=True)
    abort_failed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["started_at"]

    def __str__(self) -> str:
        return f"{self.bucket}/{self.key} ({self.upload_id[:12]})"
