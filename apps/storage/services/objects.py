"""Browsing and reading objects: storage.buckets, storage.list, storage.head,
storage.download (presigned or a console link) and storage.fetch (the console's stream)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Literal

from django.conf import settings
from django.utils import timezone
from pydantic import BaseModel, Field, PrivateAttr

from apps.core.errors import InvalidInput
from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from .. import bucket_names
from ..client import connect
from .common import (
    SHA256_META,
    BucketRef,
    ConnectionName,
    ObjectRef,
    Prefix,
    classification_of,
    console_download_url,
    must_exist,
    object_target,
    prefix_target,
    tags_of,
)

# --- storage.buckets ----------------------------------------------------------------


class BucketsInput(BaseModel):
    connection: ConnectionName


class BucketInfo(BaseModel):
    name: str
    created: datetime | None = None


class BucketsOutput(BaseModel):
    connection: str
    buckets: list[BucketInfo]


@operation("storage.buckets", risk=Risk.READ, target=lambda p: p.connection)
def buckets(ctx: Context, params: BucketsInput) -> BucketsOutput:
    """List the buckets a storage connection can see."""
    response = connect(params.connection).call("list_buckets")
    found = [BucketInfo(name=b["Name"], created=b.get("CreationDate")) for b in response.get("Buckets", [])]
    bucket_names.remember(params.connection, [b.name for b in found])
    return BucketsOutput(connection=params.connection, buckets=found)


# --- storage.list -------------------------------------------------------------------


class ListInput(BucketRef):
    prefix: Prefix = ""
    delimiter: str = Field("/", max_length=1, description="Groups keys into folders at this character; empty = a flat listing.")
    token: str | None = Field(None, max_length=4096, description="`next_token` of the previous page.")
    page_size: int = Field(100, ge=1, le=1000)
    include_versions: bool = Field(False, description="Count each object's versions (one more request per page).")


class ObjectSummary(BaseModel):
    key: str
    size: int
    last_modified: datetime
    storage_class: str
    etag: str
    versions: int | None = Field(None, description="Versions and delete markers of this key, when asked for.")


class ListOutput(BaseModel):
    prefix: str
    folders: list[str] = Field(description="Common prefixes (sub-folders) at this level.")
    objects: list[ObjectSummary]
    next_token: str | None = Field(None, description="Pass as `token` for the next page; empty on the last page.")


def _pack_token(s3_token: str, last_key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"c": s3_token, "k": last_key}).encode()).decode()


def _unpack_token(token: str) -> tuple[str, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return str(data["c"]), str(data.get("k", ""))
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidInput({"token": "not a token this console handed out"}) from None


@operation("storage.list", risk=Risk.READ, target=prefix_target)
def list_objects(ctx: Context, params: ListInput) -> ListOutput:
    """List one page of objects and folders under a prefix: size, last modified, storage class
    and (optionally) version count. Page on with `next_token`."""
    s3 = connect(params.connection)
    request = {"Bucket": params.bucket, "Prefix": params.prefix, "MaxKeys": params.page_size}
    if params.delimiter:
        request["Delimiter"] = params.delimiter
    previous_key = ""
    if params.token:
        request["ContinuationToken"], previous_key = _unpack_token(params.token)
    page = s3.call("list_objects_v2", **request)
    objects = [
        ObjectSummary(
            key=o["Key"],
            size=o["Size"],
            last_modified=o["LastModified"],
            storage_class=o.get("StorageClass", "STANDARD"),
            etag=o.get("ETag", "").strip('"'),
        )
        for o in page.get("Contents", [])
    ]
    if params.include_versions and objects:
        counts = _version_counts(s3, params, previous_key, objects[-1].key)
        for o in objects:
            o.versions = counts.get(o.key, 0)
    next_token = None
    if page.get("IsTruncated"):
        next_token = _pack_token(page["NextContinuationToken"], objects[-1].key if objects else previous_key)
    folders = [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    return ListOutput(prefix=params.prefix, folders=folders, objects=objects, next_token=next_token)


def _version_counts(s3, params: ListInput, after_key: str, last_key: str) -> dict[str, int]:
    """Versions per key, for the keys of one page: scan the versions from the previous page's last key."""
    counts: dict[str, int] = {}
    for version in s3.versions(params.bucket, params.prefix, key_marker=after_key, delimiter=params.delimiter):
        if version["Key"] > last_key:
            break
        counts[version["Key"]] = counts.get(version["Key"], 0) + 1
    return counts


# --- storage.head -------------------------------------------------------------------


class VersionInfo(BaseModel):
    version_id: str
    size: int | None
    last_modified: datetime
    is_latest: bool
    delete_marker: bool


class HeadOutput(BaseModel):
    connection: str
    bucket: str
    key: str
    size: int
    etag: str
    last_modified: datetime
    content_type: str
    storage_class: str
    version_id: str | None
    metadata: dict[str, str]
    tags: dict[str, str]
    classification: str | None = Field(description="public, internal, confidential or restricted (the `classification` tag).")
    encryption: str | None = Field(description="AES256, aws:kms, or None when the object is not encrypted at rest.")
    kms_key_id: str | None = None
    sha256: str | None = Field(None, description="SHA-256 recorded by the console when it wrote the object.")
    versioning: str = Field(description="The bucket's versioning: Enabled, Suspended or Off.")
    versions: list[VersionInfo] = Field(default_factory=list, description="The newest versions of the key (versioned buckets).")


def versioning_of(s3, bucket: str) -> str:
    return s3.call("get_bucket_versioning", Bucket=bucket).get("Status") or "Off"


@operation("storage.head", risk=Risk.READ, target=object_target)
def head(ctx: Context, params: ObjectRef) -> HeadOutput:
    """Describe one object: size, checksum, metadata, tags, classification, encryption and its versions."""
    s3 = connect(params.connection)
    meta = must_exist(s3, params.bucket, params.key, params.version_id)
    tags = tags_of(s3, params.bucket, params.key, params.version_id)
    versioning = versioning_of(s3, params.bucket)
    versions = []
    if versioning != "Off":
        for v in s3.versions(params.bucket, params.key):
            if v["Key"] != params.key:
                continue  # a longer key sharing the prefix
            versions.append(
                VersionInfo(
                    version_id=v["VersionId"],
                    size=v.get("Size"),
                    last_modified=v["LastModified"],
                    is_latest=v.get("IsLatest", False),
                    delete_marker=v["DeleteMarker"],
                )
            )
            if len(versions) >= 50:
                break
    classification = classification_of(tags)
    return HeadOutput(
        connection=params.connection,
        bucket=params.bucket,
        key=params.key,
        size=meta["ContentLength"],
        etag=meta.get("ETag", "").strip('"'),
        last_modified=meta["LastModified"],
        content_type=meta.get("ContentType", ""),
        storage_class=meta.get("StorageClass", "STANDARD"),
        version_id=meta.get("VersionId"),
        metadata=meta.get("Metadata", {}),
        tags=tags,
        classification=classification.value if classification else None,
        encryption=meta.get("ServerSideEncryption"),
        kms_key_id=meta.get("SSEKMSKeyId"),
        sha256=meta.get("Metadata", {}).get(SHA256_META),
        versioning=versioning,
        versions=versions,
    )


# --- storage.download ---------------------------------------------------------------


class DownloadInput(ObjectRef):
    mode: Literal["presigned", "console"] = Field(
        "presigned",
        description="presigned: a time-limited URL straight to the endpoint; console: a console link that streams "
        "the bytes through the console (for people without network access to the endpoint).",
    )
    expires_seconds: int = Field(300, ge=1, description="Lifetime of a presigned URL; capped by STORAGE_PRESIGN_MAX_SECONDS.")


class DownloadOutput(BaseModel):
    url: str
    mode: str
    expires_seconds: int | None = Field(None, description="The lifetime actually granted (after the cap).")
    expires_at: datetime | None = None
    size: int
    content_type: str
    etag: str


@operation("storage.download", risk=Risk.READ, permission="storage.download_objects", target=object_target)
def download(ctx: Context, params: DownloadInput) -> DownloadOutput:
    """Get a link to download one object: a presigned URL (expiry capped and audited) or a console link
    that streams it. Auditors and viewers may not download."""
    s3 = connect(params.connection)
    meta = must_exist(s3, params.bucket, params.key, params.version_id)
    common = {"size": meta["ContentLength"], "content_type": meta.get("ContentType", ""), "etag": meta.get("ETag", "").strip('"')}
    if params.mode == "console":
        return DownloadOutput(
            url=console_download_url(params.connection, params.bucket, params.key, params.version_id), mode="console", **common
        )
    expires = min(params.expires_seconds, settings.STORAGE_PRESIGN_MAX_SECONDS)
    url = s3.presign(params.bucket, params.key, params.version_id, expires)
    at = timezone.now() + timedelta(seconds=expires)
    return DownloadOutput(url=url, mode="presigned", expires_seconds=expires, expires_at=at, **common)


class FetchOutput(BaseModel):
    key: str
    size: int
    content_type: str
    etag: str
    # The bytes, read lazily by the view that streams them (not part of the schema).
    _chunks: Iterator[bytes] | None = PrivateAttr(None)

    @property
    def chunks(self) -> Iterator[bytes]:
        return self._chunks or iter(())


@operation("storage.fetch", risk=Risk.READ, permission="storage.download_objects", target=object_target, exposed=False)
def fetch(ctx: Context, params: ObjectRef) -> FetchOutput:
    """Open one object for the console to stream it to a browser (the web download link)."""
    response, chunks = connect(params.connection).open(params.bucket, params.key, params.version_id)
    out = FetchOutput(
        key=params.key,
        size=response["ContentLength"],
        content_type=response.get("ContentType") or "application/octet-stream",
        etag=response.get("ETag", "").strip('"'),
    )
    out._chunks = chunks
    return out
