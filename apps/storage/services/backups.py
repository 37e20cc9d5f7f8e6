"""Backups of a prefix with a manifest, and restores that verify every checksum.

A backup lives in `<dest_prefix><backup_id>/`:
  data/<sha256 of the key>   each object's bytes (names safe on any provider, whatever the key)
  manifest-parts/NNNNNN.jsonl  checkpoints written while the backup runs
  manifest.jsonl             header line, then one line per object: key, size, ETag, sha256,
                             version, content type, metadata, tags — written last
Running storage.backup_create again with the same backup_id resumes after the last
checkpoint; storage.backup_restore (restores.py) skips objects already restored, so it resumes too.

Every object a backup writes carries `opsconsole-backup` metadata: an HMAC, under the console's
secret key, of where it is. A backup writes only into a folder that is empty or holds nothing but
objects so marked (an interrupted run's), and each write passes `check_write` first: otherwise a
write-role caller could pick dest_prefix/backup_id so that a backup object lands on — or its
checkpoint clean-up deletes — someone's confidential object, without the approved delete.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from pydantic import BaseModel, Field

from apps.core.errors import OpsError
from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from ..client import MISSING, S3, StorageError, connect
from ..transfer import write_stream
from .classification import check_write
from .common import (
    SENSITIVE,
    BucketName,
    BucketRef,
    ConnectionName,
    Prefix,
    classification_of,
    tags_of,
    write_args,
)

FORMAT = "opsconsole-backup/1"
CHECKPOINT_EVERY = 25
MARK_META = "opsconsole-backup"


class ForeignObject(OpsError):
    """The backup folder holds an object this backup did not write: the backup would read, replace or delete it."""

    outcome = "denied"
    status_code = 409


def _backup_id() -> str:
    return timezone.now().strftime("%Y%m%dT%H%M%SZ")


class BackupInput(BucketRef):
    prefix: Prefix = ""
    dest_connection: ConnectionName | None = Field(None, description="Where the backup goes; default: the same connection.")
    dest_bucket: BucketName
    dest_prefix: Prefix = "backups/"
    backup_id: str = Field(
        default_factory=_backup_id,
        pattern=r"^[A-Za-z0-9._\-]{1,64}$",
        description="The backup's name (default: the UTC time). Give the name of an interrupted backup to resume it.",
    )


class BackupOutput(BaseModel):
    backup_id: str
    location: str = Field(description="connection:bucket/prefix of the backup folder.")
    manifest_key: str
    objects: int
    bytes: int
    copied: int = Field(description="Objects copied by this run.")
    resumed_after: int = Field(description="Objects an earlier, interrupted run had already backed up.")
    vanished: list[str] = Field(default_factory=list, description="Keys deleted while the backup ran.")


def data_key(root: str, key: str) -> str:
    return f"{root}data/{hashlib.sha256(key.encode()).hexdigest()}"


def iter_lines(chunks) -> Iterator[bytes]:
    carry = b""
    for chunk in chunks:
        carry += chunk
        *lines, carry = carry.split(b"\n")
        yield from (line for line in lines if line)
    if carry:
        yield carry


def _mark(s3: S3, bucket: str, key: str) -> str:
    """Bound to the connection, bucket and key, so a copy elsewhere does not carry it and no caller can forge it."""
    return salted_hmac("storage.backup", f"{s3.conn.pk}:{bucket}/{key}").hexdigest()[:32]


def _is_own(s3: S3, bucket: str, key: str, head: dict) -> bool:
    return constant_time_compare(head.get("Metadata", {}).get(MARK_META, ""), _mark(s3, bucket, key))


def _write_args(s3: S3, bucket: str, key: str, classification, **args) -> dict:
    """Check the write (refused over what it may not replace), then its arguments, which carry the mark."""
    check_write(s3, bucket, key, classification, replaceable=lambda head: _is_own(s3, bucket, key, head))
    return write_args(s3, classification=classification, metadata={MARK_META: _mark(s3, bucket, key)}, **args)


def _must_be_own(s3: S3, bucket: str, root: str, key: str) -> None:
    head = s3.optional("head_object", tuple(MISSING), Bucket=bucket, Key=key)
    if head is not None and not _is_own(s3, bucket, key, head):
        raise ForeignObject(
            f"{s3.conn.name}:{bucket}/{key} is in the backup folder {root} but this backup did not write it: "
            "nothing was written. Back up into an empty folder (another backup_id or dest_prefix)."
        )


def _is_sensitive(entry: dict) -> bool:
    return classification_of(entry.get("tags") or {}) in SENSITIVE


def _encryption(dst: S3, sensitive: bool) -> str:
    """Backups of confidential and restricted data are encrypted even where the connection has no default."""
    return "AES256" if sensitive and not dst.conn.default_encryption else "default"


def _listing_args(dst: S3, bucket: str, key: str, sensitive: bool) -> dict:
    """A manifest (or a part of one) names keys, metadata and tags: it is encrypted like what it lists."""
    return _write_args(dst, bucket, key, None, encryption=_encryption(dst, sensitive), content_type="application/x-ndjson")


class _Checkpoint:
    """The entries already written to manifest-parts/ (by this run or an interrupted one)."""

    def __init__(self, s3: S3, bucket: str, root: str, part_keys: list[str]):
        self.s3, self.bucket, self.parts_prefix = s3, bucket, f"{root}manifest-parts/"
        self.part_keys = part_keys
        self.objects = self.bytes = 0
        self.last_key = ""
        self.sensitive = False  # does any entry name a confidential or restricted object?
        self.data_keys: set[str] = set()
        for entry in self.entries():
            self.objects += 1
            self.bytes += entry["size"]
            self.last_key = entry["key"]
            self.sensitive |= _is_sensitive(entry)
            self.data_keys.add(entry["data_key"])

    @classmethod
    def claim(cls, s3: S3, bucket: str, root: str) -> _Checkpoint:
        """The folder's checkpoint, once everything in the folder is this backup's own: its checkpoint parts
        (marked), the data they list, and data an interrupted run wrote after its last checkpoint (marked)."""
        keys = [o["Key"] for o in s3.objects(bucket, root)]
        parts = [k for k in keys if k.startswith(f"{root}manifest-parts/")]
        for key in parts:  # before reading them: a checkpoint part is trusted and, at the end, deleted
            _must_be_own(s3, bucket, root, key)
        checkpoint = cls(s3, bucket, root, parts)
        for key in set(keys) - set(parts) - checkpoint.data_keys:
            _must_be_own(s3, bucket, root, key)
        return checkpoint

    def entries(self) -> Iterator[dict]:
        for part_key in self.part_keys:
            _, chunks = self.s3.open(self.bucket, part_key)
            for line in iter_lines(chunks):
                yield json.loads(line)

    def write(self, entries: list[dict]) -> None:
        part_key = f"{self.parts_prefix}{len(self.part_keys) + 1:06d}.jsonl"
        body = b"".join(json.dumps(e, ensure_ascii=False).encode() + b"\n" for e in entries)
        sensitive = any(_is_sensitive(e) for e in entries)
        extra = _listing_args(self.s3, self.bucket, part_key, sensitive)
        self.s3.call("put_object", Bucket=self.bucket, Key=part_key, Body=body, **extra)
        self.sensitive |= sensitive
        self.part_keys.append(part_key)
        self.objects += len(entries)
        self.bytes += sum(e["size"] for e in entries)
        self.last_key = entries[-1]["key"]

    def remove(self) -> None:
        for start in range(0, len(self.part_keys), 1000):
            batch = [{"Key": k} for k in self.part_keys[start : start + 1000]]
            self.s3.call("delete_objects", Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})


def _copy_object(src: S3, dst: S3, params: BackupInput, obj: dict, root: str) -> dict | None:
    """Copy one object into the backup; its manifest entry, or None if it vanished meanwhile."""
    target = data_key(root, obj["Key"])
    try:
        tags = tags_of(src, params.bucket, obj["Key"])
        classification = classification_of(tags)
        encryption = _encryption(dst, classification in SENSITIVE)
        extra = _write_args(dst, params.dest_bucket, target, classification, encryption=encryption, content_type="application/octet-stream")
        response, chunks = src.open(params.bucket, obj["Key"])  # after the check: nothing read for a refused write
    except StorageError as exc:
        if exc.code in ("NoSuchKey", "404"):
            return None
        raise
    written = write_stream(dst, params.dest_bucket, target, chunks, extra=extra, expected_size=response["ContentLength"])
    return {
        "key": obj["Key"],
        "size": written.size,
        "etag": response.get("ETag", "").strip('"'),
        "sha256": written.sha256,
        "version_id": response.get("VersionId"),
        "last_modified": response["LastModified"].isoformat(),
        "storage_class": obj.get("StorageClass", "STANDARD"),
        "content_type": response.get("ContentType", ""),
        "metadata": response.get("Metadata", {}),
        "tags": tags,
        "data_key": target,
    }


@operation(
    "storage.backup_create",
    risk=Risk.WRITE,
    long=True,
    resumable=True,
    target=lambda p: f"{p.connection}:{p.bucket}/{p.prefix} → {p.dest_bucket}/{p.dest_prefix}{p.backup_id}",
)
def backup_create(ctx: Context, params: BackupInput) -> BackupOutput:
    """Back up every object under a prefix to a backup folder with a manifest (key, size, ETag, SHA-256,
    version, metadata, tags) stored next to it. Runs as a job; after a failure, run it again with the same
    backup_id and it resumes after its last checkpoint."""
    src = connect(params.connection)
    dst = connect(params.dest_connection or params.connection)
    root = f"{params.dest_prefix}{params.backup_id}/"
    location = f"{dst.conn.name}:{params.dest_bucket}/{root}"
    manifest_key = f"{root}manifest.jsonl"
    existing = _read_header(dst, params.dest_bucket, manifest_key)
    if existing is not None:
        ctx.log(f"backup {params.backup_id} is already complete")
        return BackupOutput(backup_id=params.backup_id, location=location, manifest_key=manifest_key, objects=existing["objects"],
                            bytes=existing["bytes"], copied=0, resumed_after=existing["objects"])  # fmt: skip
    checkpoint = _Checkpoint.claim(dst, params.dest_bucket, root)
    resumed_after = checkpoint.objects
    if resumed_after:
        ctx.log(f"resuming backup {params.backup_id}: {resumed_after} objects already backed up, continuing after {checkpoint.last_key!r}")
    else:
        ctx.log(f"backup {params.backup_id} of {params.connection}:{params.bucket}/{params.prefix} into {location}")
    own_folder = dst.conn.pk == src.conn.pk and params.dest_bucket == params.bucket
    total = sum(1 for o in src.objects(params.bucket, params.prefix) if not (own_folder and o["Key"].startswith(params.dest_prefix)))
    pending: list[dict] = []
    vanished: list[str] = []
    copied = 0
    for obj in src.objects(params.bucket, params.prefix, start_after=checkpoint.last_key):
        if own_folder and obj["Key"].startswith(params.dest_prefix):
            continue  # never back up the backups
        entry = _copy_object(src, dst, params, obj, root)
        if entry is None:
            vanished.append(obj["Key"])
            ctx.log(f"{obj['Key']!r} was deleted while the backup ran; skipped", level="warning")
            continue
        pending.append(entry)
        copied += 1
        if len(pending) >= CHECKPOINT_EVERY:
            checkpoint.write(pending)
            pending = []
            ctx.progress(95 * checkpoint.objects / max(total, 1), f"{checkpoint.objects} of about {total} objects")
    if pending:
        checkpoint.write(pending)
    header = {
        "format": FORMAT,
        "backup_id": params.backup_id,
        "source": {"connection": params.connection, "bucket": params.bucket, "prefix": params.prefix},
        "created_at": timezone.now().isoformat(),
        "objects": checkpoint.objects,
        "bytes": checkpoint.bytes,
    }

    def manifest_lines():
        yield json.dumps(header).encode() + b"\n"
        for entry in checkpoint.entries():
            yield json.dumps(entry, ensure_ascii=False).encode() + b"\n"

    extra = _listing_args(dst, params.dest_bucket, manifest_key, checkpoint.sensitive)
    write_stream(dst, params.dest_bucket, manifest_key, manifest_lines(), extra=extra)
    checkpoint.remove()
    ctx.log(f"manifest written: {checkpoint.objects} objects, {checkpoint.bytes} bytes")
    return BackupOutput(backup_id=params.backup_id, location=location, manifest_key=manifest_key, objects=checkpoint.objects,
                        bytes=checkpoint.bytes, copied=copied, resumed_after=resumed_after, vanished=vanished[:1000])  # fmt: skip


def _read_header(s3: S3, bucket: str, manifest_key: str) -> dict | None:
    try:
        _, chunks = s3.open(bucket, manifest_key, chunk_size=64 * 1024)
    except StorageError as exc:
        if exc.code in ("NoSuchKey", "404"):
            return None
        raise
    try:
        header = json.loads(next(iter_lines(chunks), b"{}"))
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise StorageError(f"{manifest_key} is not a manifest this console wrote (its first line is not a {FORMAT} header).")
    return header


# --- storage.backups ----------------------------------------------------------------


class BackupsInput(BucketRef):
    prefix: Prefix = "backups/"


class BackupInfo(BaseModel):
    backup_prefix: str
    complete: bool = Field(description="False for an interrupted backup: run storage.backup_create with its id to finish it.")
    objects: int | None = None
    bytes: int | None = None
    created_at: str | None = None
    source: dict | None = None


class BackupsOutput(BaseModel):
    backups: list[BackupInfo]


@operation("storage.backups", risk=Risk.READ, target=lambda p: f"{p.connection}:{p.bucket}/{p.prefix}")
def backups(ctx: Context, params: BackupsInput) -> BackupsOutput:
    """List the backups in a backup location (newest last), complete or interrupted."""
    s3 = connect(params.connection)
    page = s3.call("list_objects_v2", Bucket=params.bucket, Prefix=params.prefix, Delimiter="/", MaxKeys=1000)
    found = []
    for folder in (p["Prefix"] for p in page.get("CommonPrefixes", [])):
        header = _read_header(s3, params.bucket, f"{folder}manifest.jsonl")
        info = {k: header.get(k) for k in ("objects", "bytes", "created_at", "source")} if header else {}
        found.append(BackupInfo(backup_prefix=folder, complete=header is not None, **info))
    return BackupsOutput(backups=found)
