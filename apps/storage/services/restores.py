"""storage.backup_restore: a backup's objects back in place, each one's SHA-256 verified.

Restoring with `overwrite` replaces objects that hold other content with the backup's bytes and
classification, so its plan (what the approver votes on) says exactly that: how many objects it
creates, overwrites and finds already in place; the protected ones among the overwritten (deleting
them needs approval, or the restore lowers their classification), each with its classification now →
restored; and a digest of every object it overwrites (key, ETag, version, classification). An object
that changes between the vote and the run changes the plan: the approved job ends drifted.
Without `overwrite` nothing is written over: objects with other content are left alone, and each write
asks `check_write` first, so one that appeared meanwhile is not destroyed or downgraded either.

Overwriting a protected object lowers a guard (as storage.reclassify does), so such a restore is a guard
call: someone other than the requester approves it whatever the storage policy's rows say, and break-glass
does not apply. A run that no one else approved (an exempting policy, a break-glass run) leaves every
object that is protected when it gets there alone, as a conflict.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

from pydantic import BaseModel, Field

from apps.approvals.models import ApprovalRequest
from apps.core.errors import OpsError
from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from ..client import MISSING, StorageError, connect
from ..transfer import ChecksumMismatch, write_stream
from .backups import FORMAT, iter_lines
from .classification import ClassificationGuard, check_write, lowers
from .common import (
    CLASSIFICATION_TAG,
    SHA256_META,
    BucketName,
    BucketRef,
    Classification,
    ConnectionName,
    Prefix,
    classification_of,
    deletion_needs_approval,
    tags_of,
    write_args,
)
from .objects import versioning_of

PLAN_LISTED = 50  # protected objects named in a plan; all of them are counted and digested


class RestoreInput(BucketRef):
    backup_prefix: Prefix = Field(description="The backup folder, e.g. `backups/20250101T000000Z/`.")
    target_connection: ConnectionName | None = Field(None, description="Default: the connection the backup was taken from.")
    target_bucket: BucketName | None = Field(None, description="Default: the bucket the backup was taken from.")
    target_prefix: Prefix | None = Field(None, description="Restore under this prefix instead of the original one.")
    overwrite: bool = Field(False, description="Replace objects that exist with other content (needs approval).")


class Mismatch(BaseModel):
    key: str
    expected_sha256: str
    actual_sha256: str


class RestoreOutput(BaseModel):
    restored: int
    already_in_place: int = Field(description="Objects skipped because they already hold the backed-up bytes (a resumed restore).")
    bytes: int
    mismatches: list[Mismatch] = Field(description="Backup objects whose bytes no longer match the manifest: not restored.")
    conflicts: list[str] = Field(description="Keys holding other content (or protected), left alone (overwrite was off).")
    missing: list[str] = Field(description="Backup objects that are gone.")


class _Backup:
    """A complete backup's manifest, opened, and the place it restores into."""

    def __init__(self, params: RestoreInput):
        self.src = connect(params.connection)
        root = params.backup_prefix if params.backup_prefix.endswith("/") else params.backup_prefix + "/"
        try:
            response, chunks = self.src.open(params.bucket, f"{root}manifest.jsonl")
        except StorageError as exc:
            if exc.code in ("NoSuchKey", "404"):
                raise StorageError(
                    f"There is no complete backup in {params.bucket}/{root}: manifest.jsonl is missing. "
                    "An interrupted backup is finished by running storage.backup_create again with its backup_id."
                ) from None
            raise
        self.manifest_etag = response.get("ETag", "")
        self.lines = iter_lines(chunks)
        self.header = json.loads(next(self.lines))
        if self.header.get("format") != FORMAT:
            raise StorageError(f"{root}manifest.jsonl is not a manifest this console wrote.")
        source = self.header["source"]
        self.tgt = connect(params.target_connection or source["connection"])
        self.bucket = params.target_bucket or source["bucket"]
        self.prefix = source["prefix"] if params.target_prefix is None else params.target_prefix
        self.source_prefix = source["prefix"]

    def entries(self) -> Iterator[tuple[str, dict, dict | None]]:
        """Each manifest entry with the key it restores to and the object there now (None: nothing)."""
        for line in self.lines:
            entry = json.loads(line)
            key = self.prefix + entry["key"][len(self.source_prefix) :]
            yield key, entry, self.tgt.optional("head_object", tuple(MISSING), Bucket=self.bucket, Key=key)


def _in_place(existing: dict, entry: dict) -> bool:
    same_bytes = existing.get("Metadata", {}).get(SHA256_META) == entry["sha256"] or existing.get("ETag", "").strip('"') == entry["etag"]
    return existing["ContentLength"] == entry["size"] and same_bytes


def _restored_classification(entry: dict) -> Classification | None:
    return classification_of(entry.get("tags") or {})


def _name(classification: Classification | None) -> str:
    return classification.value if classification else "unclassified"


def _protected(now: Classification | None, restored: Classification | None) -> bool:
    """Writing over it takes a guard away: deleting it needs approval, or the restore lowers its classification."""
    return deletion_needs_approval(now) or lowers(now, restored)


def _overwrites(backup: _Backup, key: str, entry: dict) -> tuple[Classification | None, Classification | None]:
    """An overwritten object's classification now and the one the restore writes."""
    return classification_of(tags_of(backup.tgt, backup.bucket, key)), _restored_classification(entry)


def overwrites_protected(params: RestoreInput) -> bool:
    """Does this restore write over a protected object (a guard-lowering call)? One that cannot be read counts."""
    if not params.overwrite:
        return False
    try:
        backup = _Backup(params)
        return any(
            _protected(*_overwrites(backup, key, entry))
            for key, entry, existing in backup.entries()
            if existing is not None and not _in_place(existing, entry)
        )
    except OpsError:
        return True  # cannot tell: be safe (the request's plan then says why)


def _approved_by_another(ctx: Context) -> bool:
    """The run carries another person's approval of its plan (not a break-glass review, not an exempting policy)."""
    if ctx.job is None or not ctx.job.approval_id:
        return False
    return ApprovalRequest.objects.filter(pk=ctx.job.approval_id, break_glass=False).exists()


def plan_restore(ctx: Context, params: RestoreInput) -> dict:
    """The backup a restore reads, where it writes, and what it would write over (see the module docstring)."""
    backup = _Backup(params)
    counts = {"create": 0, "overwrite": 0, "already_in_place": 0}
    protected: list[dict] = []
    protected_count = 0
    digest = hashlib.sha256()
    for key, entry, existing in backup.entries():
        if existing is None:
            counts["create"] += 1
            continue
        if _in_place(existing, entry):
            counts["already_in_place"] += 1
            continue
        counts["overwrite"] += 1
        now, restored = _overwrites(backup, key, entry)
        digest.update(json.dumps([key, existing.get("ETag", ""), existing.get("VersionId"), _name(now), _name(restored)]).encode() + b"\n")
        if _protected(now, restored):
            protected_count += 1
            if len(protected) < PLAN_LISTED:
                protected.append({"key": key, "classification": f"{_name(now)} → {_name(restored)}"})
    header = backup.header
    what = "overwrites" if params.overwrite else "leaves alone (overwrite is off)"
    return {
        "summary": f"Restore backup {header['backup_id']} ({header['objects']} objects, {header['bytes']} bytes): creates "
        f"{counts['create']}, {what} {counts['overwrite']} holding other content ({protected_count} of them protected), "
        f"{counts['already_in_place']} already in place.",
        "backup": {
            "id": header["backup_id"],
            "objects": header["objects"],
            "bytes": header["bytes"],
            "manifest_etag": backup.manifest_etag,
        },
        "into": {
            "connection": backup.tgt.conn.name,
            "bucket": backup.bucket,
            "prefix": backup.prefix,
            "keeps_versions": versioning_of(backup.tgt, backup.bucket) == "Enabled",
        },
        "overwrite": params.overwrite,
        "objects": counts,
        "overwritten_protected": {
            "count": protected_count,
            "listed": protected,
            "why": "deleting them needs approval, or the restore lowers their classification; "
            f"the first {PLAN_LISTED} are named, all are in the digest",
        },
        "overwrite_digest": digest.hexdigest(),
    }


@operation(
    "storage.backup_restore",
    planner=plan_restore,
    risk=Risk.RISKY,
    guard=overwrites_protected,
    long=True,
    resumable=True,
    approval_scope=lambda p: "" if p.overwrite else None,
    target=lambda p: f"{p.connection}:{p.bucket}/{p.backup_prefix}",
)
def backup_restore(ctx: Context, params: RestoreInput) -> RestoreOutput:
    """Restore a backup from its manifest, verifying each object's SHA-256: mismatching objects are not
    restored but reported. Existing objects with other content are left alone unless `overwrite` (which
    needs approval; its plan names the protected objects it would replace, and replacing a confidential or
    restricted object, or lowering a classification, always needs someone else's approval). Objects already
    restored are skipped, so running it again resumes it."""
    backup = _Backup(params)
    approved = _approved_by_another(ctx)
    total = backup.header["objects"]
    out = RestoreOutput(restored=0, already_in_place=0, bytes=0, mismatches=[], conflicts=[], missing=[])
    ctx.log(f"restoring {total} objects of backup {backup.header['backup_id']} into {backup.tgt.conn.name}:{backup.bucket}")
    for number, (key, entry, existing) in enumerate(backup.entries(), 1):
        _restore_one(ctx, backup, params, key, entry, existing, out, approved=approved)
        if number % 10 == 0 or number == total:
            ctx.progress(100 * number / max(total, 1), f"{number} of {total} objects")
    ctx.log(f"restored {out.restored}, already in place {out.already_in_place}, mismatches {len(out.mismatches)}, "
            f"conflicts {len(out.conflicts)}, missing {len(out.missing)}")  # fmt: skip
    return out


def _restore_one(
    ctx: Context,
    backup: _Backup,
    params: RestoreInput,
    key: str,
    entry: dict,
    existing: dict | None,
    out: RestoreOutput,
    *,
    approved: bool,
) -> None:
    tgt, bucket = backup.tgt, backup.bucket
    classification = _restored_classification(entry)
    if existing is not None and _in_place(existing, entry):
        out.already_in_place += 1
        return
    if existing is not None and not params.overwrite:
        out.conflicts.append(key)
        return
    if existing is not None and not approved and _protected(*_overwrites(backup, key, entry)):
        ctx.log(f"{key} is protected (or would be downgraded): overwriting it needs someone else's approval; left alone", level="warning")
        out.conflicts.append(key)
        return
    if existing is None:  # not in the approved plan's overwrite list: may not destroy or downgrade what appeared since
        try:
            check_write(tgt, bucket, key, classification)
        except ClassificationGuard as exc:
            ctx.log(exc.message, level="warning")
            out.conflicts.append(key)
            return
    try:
        _, chunks = backup.src.open(params.bucket, entry["data_key"])
    except StorageError as exc:
        if exc.code in ("NoSuchKey", "404"):
            out.missing.append(entry["key"])
            return
        raise
    tags = dict(entry.get("tags", {}))
    tags.pop(CLASSIFICATION_TAG, None)
    extra = write_args(tgt, classification=classification, metadata={**entry.get("metadata", {}), SHA256_META: entry["sha256"]},
                       content_type=entry.get("content_type", ""), tags=tags)  # fmt: skip
    try:
        write_stream(tgt, bucket, key, chunks, extra=extra, expected_sha256=entry["sha256"], expected_size=entry["size"])
    except ChecksumMismatch as exc:
        out.mismatches.append(Mismatch(key=entry["key"], expected_sha256=entry["sha256"], actual_sha256=exc.actual))
        return
    out.restored += 1
    out.bytes += entry["size"]
