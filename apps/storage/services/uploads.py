"""storage.upload (streamed, verified, classified, encrypted) and the cleanup of
multipart uploads that could not be aborted."""

from __future__ import annotations

import base64
import binascii
import hashlib
import mimetypes
from collections.abc import Iterable
from datetime import timedelta
from typing import Annotated, Literal

from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from pydantic import AfterValidator, BaseModel, Field, PrivateAttr

from apps.core.errors import InvalidInput, OpsError
from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from ..client import S3, connect
from ..models import MultipartUpload
from ..transfer import abort_recorded, write_stream
from .classification import check_write
from .common import (
    SHA256_META,
    BucketRef,
    Classification,
    ContentType,
    Encryption,
    ObjectKey,
    Sha256,
    StorageClass,
    UploadSize,
    check_metadata,
    object_target,
    write_args,
)

INLINE_LIMIT = 1024 * 1024


class UploadTarget(BucketRef):
    """Where an upload goes and what it is stored with: the rules every upload path (streamed, inline, direct) shares."""

    key: ObjectKey
    classification: Classification = Field(Classification.INTERNAL, description="Stored as the object's `classification` tag.")
    encryption: Encryption = Field("default", description="Server-side encryption; default = the connection's default.")
    kms_key_id: str = Field("", max_length=300, description="KMS key for aws:kms (else the connection's).")
    metadata: Annotated[dict[str, str], AfterValidator(check_metadata)] = Field(
        default_factory=dict, description="Custom metadata (x-amz-meta-*)."
    )
    content_type: ContentType = ""
    storage_class: StorageClass | None = None

    def write_args(self, s3: S3, uploader: str, sha256: str | None = None) -> dict:
        """The CreateMultipartUpload / PUT arguments: tags, encryption, metadata (with who uploaded), content type."""
        metadata = dict(self.metadata)
        if sha256:
            metadata[SHA256_META] = sha256
        metadata.setdefault("uploaded-by", uploader)
        return write_args(
            s3,
            classification=self.classification,
            encryption=self.encryption,
            kms_key_id=self.kms_key_id,
            metadata=metadata,
            content_type=self.content_type or mimetypes.guess_type(self.key)[0] or "application/octet-stream",
            storage_class=self.storage_class,
        )


class UploadInput(UploadTarget):
    sha256: Sha256 | None = Field(None, description="Expected SHA-256: the upload is aborted (nothing stored) when the bytes differ.")
    size: UploadSize | None = Field(None, description="Expected size in bytes.")
    content: str | None = Field(
        None,
        max_length=INLINE_LIMIT * 2,
        exclude=True,  # bytes never go into the audit log
        json_schema_extra={"widget": "textarea"},
        description="The content inline, for small uploads (≤ 1 MiB) by agents and forms; browsers stream files from the upload page.",
    )
    content_encoding: Literal["utf-8", "base64"] = Field("utf-8", description="How `content` is encoded.")
    # The byte stream of a browser upload, set by the streaming endpoint (not part of the schema).
    _source: Iterable[bytes] | None = PrivateAttr(None)

    def streaming(self, chunks: Iterable[bytes]) -> UploadInput:
        self._source = chunks
        return self


class UploadOutput(BaseModel):
    connection: str
    bucket: str
    key: str
    size: int
    sha256: str
    etag: str
    version_id: str | None
    parts: int = Field(description="1 for a single PUT, else the number of multipart parts.")
    classification: str
    encryption: str | None


def _inline_bytes(params: UploadInput) -> bytes:
    try:
        data = base64.b64decode(params.content, validate=True) if params.content_encoding == "base64" else params.content.encode()
    except (binascii.Error, ValueError):
        raise InvalidInput({"content": "not valid base64"}) from None
    if len(data) > INLINE_LIMIT:
        raise InvalidInput({"content": "inline content is limited to 1 MiB: upload bigger files from the Storage page"})
    return data


@operation("storage.upload", risk=Risk.WRITE, target=object_target)
def upload(ctx: Context, params: UploadInput) -> UploadOutput:
    """Upload an object with a classification tag, server-side encryption and custom metadata; its SHA-256
    is verified and recorded in the `sha256` metadata. Agents pass small content inline; the web upload page
    streams any size to S3 multipart with flat memory. Writing over an object whose deletion needs approval
    (unless the bucket keeps versions), or lowering an object's classification, is refused."""
    s3 = connect(params.connection)
    expected = params.sha256.lower() if params.sha256 else None
    if params._source is not None:
        chunks = params._source
    elif params.content is not None:
        data = _inline_bytes(params)
        actual = hashlib.sha256(data).hexdigest()
        expected = expected or actual
        chunks = [data]
    else:
        raise InvalidInput({"content": "give the content inline, or upload the file from the Storage page"})
    check_write(s3, params.bucket, params.key, params.classification)
    args = params.write_args(s3, ctx.actor.name, expected)
    written = write_stream(s3, params.bucket, params.key, chunks, extra=args, expected_sha256=expected, expected_size=params.size)
    return UploadOutput(
        connection=params.connection,
        bucket=params.bucket,
        key=params.key,
        size=written.size,
        sha256=written.sha256,
        etag=written.etag,
        version_id=written.version_id,
        parts=written.parts,
        classification=params.classification.value,
        encryption=args.get("ServerSideEncryption"),
    )


class AbortStaleInput(BaseModel):
    older_than_hours: int | None = Field(
        None, ge=0, le=24 * 366 * 10, description="Also abort uploads started longer ago than this (default STORAGE_STALE_UPLOAD_HOURS)."
    )


class AbortStaleOutput(BaseModel):
    aborted: list[str]
    failed: list[str]


@operation("storage.abort_stale_uploads", risk=Risk.WRITE, target=lambda p: "stale multipart uploads")
def abort_stale_uploads(ctx: Context, params: AbortStaleInput) -> AbortStaleOutput:
    """Abort the multipart uploads the console could not abort itself (the endpoint was down) or that
    outlived their process, so no orphaned parts stay on the endpoint. Runs on a schedule too."""
    hours = settings.STORAGE_STALE_UPLOAD_HOURS if params.older_than_hours is None else params.older_than_hours
    cutoff = timezone.now() - timedelta(hours=hours)
    last_alive = Coalesce("signed_at", "started_at")  # a direct upload lives while its parts are signed
    stale = MultipartUpload.objects.annotate(last_alive=last_alive).filter(Q(abort_failed_at__isnull=False) | Q(last_alive__lt=cutoff))
    stale = stale.select_related("connection")
    aborted, failed = [], []
    for upload in stale:
        name = f"{upload.connection.name}:{upload.bucket}/{upload.key}"
        try:
            abort_recorded(S3(upload.connection), upload)
            aborted.append(name)
        except OpsError as exc:
            failed.append(f"{name}: {exc.message}")
    return AbortStaleOutput(aborted=aborted, failed=failed)
