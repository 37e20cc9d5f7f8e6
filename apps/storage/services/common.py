"""What the storage operations share: input types (connection, bucket, object
key — keys stay visible in the audit log), classification tags, and the
arguments every write sends (encryption, tags, metadata)."""

from __future__ import annotations

import enum
import fnmatch
import re
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse
from pydantic import AfterValidator, BaseModel, Field

from ..client import S3, StorageError

CLASSIFICATION_TAG = "classification"
SHA256_META = "sha256"


class Classification(enum.StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    RESTRICTED = "restricted"


SENSITIVE = {Classification.CONFIDENTIAL, Classification.RESTRICTED}

STORAGE_CLASSES = (
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "GLACIER_IR",
    "DEEP_ARCHIVE",
)
StorageClass = Literal[STORAGE_CLASSES]
Encryption = Literal["default", "none", "AES256", "aws:kms"]


def check_key(key: str) -> str:
    """An S3 object key: 1-1024 UTF-8 bytes, no control characters. Spaces, unicode and
    `../` are legal in S3 and kept as they are: a key is never used as a local path."""
    size = len(key.encode("utf-8"))
    if not 1 <= size <= 1024:
        raise ValueError("an object key is 1 to 1024 bytes of UTF-8")
    if re.search(r"[\x00-\x1f\x7f]", key):
        raise ValueError("an object key may not contain control characters")
    return key


def check_prefix(prefix: str) -> str:
    if prefix and re.search(r"[\x00-\x1f\x7f]", prefix):
        raise ValueError("a prefix may not contain control characters")
    return prefix


def check_content_type(content_type: str) -> str:
    """A MIME type (`type/subtype`, parameters allowed) that STORAGE_UPLOAD_CONTENT_TYPES admits (empty = any)."""
    if not content_type:
        return content_type
    if not re.fullmatch(r"[\w.+\-]+/[\w.+\-]+( *;[ -~]*)?", content_type):
        raise ValueError("a content type is type/subtype, e.g. text/csv or application/octet-stream")
    allowed = settings.STORAGE_UPLOAD_CONTENT_TYPES
    essence = content_type.split(";", 1)[0].strip().lower()
    if allowed and not any(fnmatch.fnmatchcase(essence, pattern) for pattern in allowed):
        raise ValueError(f"content type {essence} is not accepted here (allowed: {', '.join(allowed)})")
    return content_type


def check_upload_size(size: int | None) -> int | None:
    if size is not None and size > settings.STORAGE_UPLOAD_MAX_BYTES:
        raise ValueError(f"uploads are limited to {settings.STORAGE_UPLOAD_MAX_BYTES} bytes (STORAGE_UPLOAD_MAX_BYTES)")
    return size


ConnectionName = Annotated[str, Field(min_length=1, max_length=50, description="A storage connection's name (see storage.connections).")]
BucketName = Annotated[
    str, Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$", description="The bucket's name.")
]
ObjectKey = Annotated[
    str,
    AfterValidator(check_key),
    # An object key is not a credential: the audit log shows it despite its name.
    Field(max_length=1024, json_schema_extra={"audit": "show"}, description="The object's key (spaces, unicode, `../` are fine)."),
]
Prefix = Annotated[
    str,
    AfterValidator(check_prefix),
    Field(max_length=1024, json_schema_extra={"audit": "show"}, description="Key prefix, e.g. `reports/2024/`; empty = the whole bucket."),
]
ContentType = Annotated[
    str, AfterValidator(check_content_type), Field(max_length=200, description="MIME type; guessed from the key when empty.")
]
UploadSize = Annotated[int, Field(ge=0, description="The file's size in bytes."), AfterValidator(check_upload_size)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$", description="SHA-256 of the content, 64 hex digits.")]


class BucketRef(BaseModel):
    connection: ConnectionName
    bucket: BucketName


class ObjectRef(BucketRef):
    key: ObjectKey
    version_id: str | None = Field(None, max_length=1024, description="A specific version (versioned buckets); empty = the latest.")


def object_target(p: ObjectRef) -> str:
    return f"{p.connection}:{p.bucket}/{p.key}"


def prefix_target(p) -> str:
    return f"{p.connection}:{p.bucket}/{p.prefix}"


def tags_of(s3: S3, bucket: str, key: str, version_id: str | None = None) -> dict[str, str]:
    extra = {"VersionId": version_id} if version_id else {}
    response = s3.call("get_object_tagging", Bucket=bucket, Key=key, **extra)
    return {t["Key"]: t["Value"] for t in response.get("TagSet", [])}


def classification_of(tags: dict[str, str]) -> Classification | None:
    try:
        return Classification(tags.get(CLASSIFICATION_TAG, ""))
    except ValueError:
        return None


def deletion_needs_approval(classification: Classification | None) -> bool:
    """storage.delete's rule: deleting a confidential or restricted object waits for an approver."""
    return classification in SENSITIVE


def encode_tags(tags: dict[str, str]) -> str:
    return urlencode(sorted(tags.items()))


def write_args(
    s3: S3,
    *,
    classification: Classification | str | None,
    encryption: str = "default",
    kms_key_id: str = "",
    metadata: dict[str, str] | None = None,
    content_type: str = "",
    storage_class: str | None = None,
    tags: dict[str, str] | None = None,
) -> dict:
    """The arguments of a PUT / CreateMultipartUpload: encryption (the connection's default
    unless told), the classification tag, metadata, content type and storage class."""
    args: dict = {}
    algorithm = s3.conn.default_encryption if encryption == "default" else ("" if encryption == "none" else encryption)
    if algorithm:
        args["ServerSideEncryption"] = algorithm
        kms = kms_key_id or (s3.conn.kms_key_id if algorithm == "aws:kms" else "")
        if algorithm == "aws:kms" and kms:
            args["SSEKMSKeyId"] = kms
    tags = dict(tags or {})
    if classification:
        tags[CLASSIFICATION_TAG] = str(classification)
    if tags:
        args["Tagging"] = encode_tags(tags)
    if metadata:
        args["Metadata"] = dict(metadata)
    if content_type:
        args["ContentType"] = content_type
    if storage_class:
        args["StorageClass"] = storage_class
    return args


def check_metadata(metadata: dict[str, str]) -> dict[str, str]:
    for name in metadata:
        if not re.fullmatch(r"[a-z0-9][a-z0-9\-_]{0,62}", name):
            raise ValueError(f"metadata name {name!r}: lower-case letters, digits, - and _ only")
    if sum(len(k) + len(v.encode()) for k, v in metadata.items()) > 1800:
        raise ValueError("metadata is limited to about 2 KB in all")
    return metadata


def console_download_url(connection: str, bucket: str, key: str, version_id: str | None = None) -> str:
    query = {"connection": connection, "bucket": bucket, "key": key, **({"version_id": version_id} if version_id else {})}
    return settings.CONSOLE_BASE_URL.rstrip("/") + reverse("storage:download") + "?" + urlencode(query)


def must_exist(s3: S3, bucket: str, key: str, version_id: str | None = None) -> dict:
    """HEAD the object; a clear error when it is not there."""
    extra = {"VersionId": version_id} if version_id else {}
    try:
        return s3.call("head_object", Bucket=bucket, Key=key, **extra)
    except StorageError as exc:
        if exc.code in ("404", "NoSuchKey", "NotFound"):
            raise StorageError(f"There is no object {key!r} in bucket {bucket!r} on connection {s3.conn.name}.", code="NoSuchKey") from None
        raise


def age_days(modified: datetime, now: datetime) -> float:
    return max(0.0, (now - modified).total_seconds() / 86400)
