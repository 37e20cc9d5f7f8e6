"""storage.delete: versioning-aware deletes; confidential and restricted objects and
whole prefixes wait for an approver."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from urllib.parse import urlencode

from django.urls import reverse
from pydantic import BaseModel, Field, model_validator

from apps.core.errors import OpsError
from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from ..client import StorageError, connect
from .common import BucketName, ConnectionName, ObjectKey, Prefix, classification_of, deletion_needs_approval, must_exist, tags_of
from .objects import versioning_of


class DeleteInput(BaseModel):
    connection: ConnectionName
    bucket: BucketName
    key: ObjectKey | None = Field(None, json_schema_extra={"audit": "show"}, description="The object to delete.")
    prefix: Prefix | None = Field(None, description="Delete every object under this prefix (always needs approval).")
    version_id: str | None = Field(None, max_length=1024, description="Delete this version for good (with `key`).")
    all_versions: bool = Field(False, description="Delete every version and delete marker for good, not just add a delete marker.")

    @model_validator(mode="after")
    def one_target(self):
        if bool(self.key) == bool(self.prefix):
            raise ValueError("give either a key or a non-empty prefix")
        if self.version_id and not self.key:
            raise ValueError("version_id goes with a key")
        return self


class Deleted(BaseModel):
    key: str
    version_id: str | None = None
    delete_marker: bool = Field(False, description="True when a delete marker was added (the data stays as an older version).")


class DeleteOutput(BaseModel):
    deleted: list[Deleted] = Field(description="Up to the first 1000 deletions.")
    count: int
    versioning: str
    errors: list[str] = Field(default_factory=list)


def delete_scope(params: DeleteInput) -> str | None:
    """Prefixes, and confidential or restricted objects, need approval; other single objects do not."""
    if params.prefix:
        return ""
    try:
        s3 = connect(params.connection)
        classification = classification_of(tags_of(s3, params.bucket, params.key, params.version_id))
    except StorageError as exc:
        if exc.code in ("NoSuchKey", "404", "NoSuchVersion"):
            return None  # nothing to protect: the delete itself will say so
        return ""  # cannot tell: be safe
    except OpsError:
        return ""
    return "" if deletion_needs_approval(classification) else None


def _target(p: DeleteInput) -> str:
    return f"{p.connection}:{p.bucket}/{p.key or p.prefix + '*'}" + (f" @{p.version_id}" if p.version_id else "")


PLAN_LISTED = 200  # objects named one by one in a delete's plan
PLAN_COUNTED = 100_000  # objects counted (and their bytes summed) before the plan says "at least"


def plan_delete(ctx: Context, params: DeleteInput) -> dict:
    """What the delete removes now: the objects or versions (the first PLAN_LISTED named), how many, how many bytes."""
    s3 = connect(params.connection)
    versioning = versioning_of(s3, params.bucket)
    prefix = params.key or params.prefix
    folder = params.prefix or params.key[: params.key.rfind("/") + 1]  # the listing the objects appear in
    browse = reverse("storage:browse", args=[params.connection, params.bucket]) + "?" + urlencode({"prefix": folder})
    if params.key and not params.all_versions:
        head = must_exist(s3, params.bucket, params.key, params.version_id)
        entries = [{"key": params.key, "version_id": params.version_id, "size": head["ContentLength"], "etag": head.get("ETag", "")}]
        mode = "this version, for good" if params.version_id else ("a delete marker" if versioning == "Enabled" else "for good")
    else:
        listing = s3.versions(params.bucket, prefix) if params.all_versions and versioning != "Off" else s3.objects(params.bucket, prefix)
        entries = [
            {"key": e["Key"], "version_id": e.get("VersionId"), "size": e.get("Size", 0), "etag": e.get("ETag", "")}
            for e in islice(listing, PLAN_COUNTED + 1)
            if params.key is None or e["Key"] == params.key
        ]
        mode = "every version, for good" if params.all_versions else ("delete markers" if versioning == "Enabled" else "for good")
    complete = len(entries) <= PLAN_COUNTED
    entries = entries[:PLAN_COUNTED]
    count = f"{len(entries)}" if complete else f"at least {PLAN_COUNTED}"
    return {
        "summary": f"Delete {count} object(s)/version(s), {sum(e['size'] for e in entries)} bytes, from {_target(params)} ({mode}).",
        "versioning": versioning,
        "mode": mode,
        "count": len(entries),
        "bytes": sum(e["size"] for e in entries),
        "complete": complete,
        "listed": entries[:PLAN_LISTED],
        "listing_cap": f"the first {PLAN_LISTED} are named; up to {PLAN_COUNTED} are counted",
        "links": {"objects": browse},
    }


@operation("storage.delete", risk=Risk.RISKY, approval_scope=delete_scope, target=_target, planner=plan_delete)
def delete(ctx: Context, params: DeleteInput) -> DeleteOutput:
    """Delete an object or every object under a prefix, versioning-aware: on a versioned bucket a plain delete
    adds a delete marker (recoverable); `version_id` or `all_versions` delete for good. Confidential and
    restricted objects, and whole prefixes, wait for an approver."""
    s3 = connect(params.connection)
    versioning = versioning_of(s3, params.bucket)
    if params.key and not params.all_versions:
        must_exist(s3, params.bucket, params.key, params.version_id)
        extra = {"VersionId": params.version_id} if params.version_id else {}
        response = s3.call("delete_object", Bucket=params.bucket, Key=params.key, **extra)
        done = Deleted(key=params.key, version_id=response.get("VersionId"), delete_marker=bool(response.get("DeleteMarker")))
        return DeleteOutput(deleted=[done], count=1, versioning=versioning)
    targets = _delete_targets(s3, params, versioning)
    return _delete_batches(ctx, s3, params.bucket, targets, versioning)


def _delete_targets(s3, params: DeleteInput, versioning: str) -> Iterator[dict]:
    prefix = params.key or params.prefix
    if params.all_versions and versioning != "Off":
        for v in s3.versions(params.bucket, prefix):
            if params.key is None or v["Key"] == params.key:
                yield {"Key": v["Key"], "VersionId": v["VersionId"]}
        return
    for o in s3.objects(params.bucket, prefix):
        if params.key is None or o["Key"] == params.key:
            yield {"Key": o["Key"]}


def _delete_batches(ctx: Context, s3, bucket: str, targets: Iterator[dict], versioning: str) -> DeleteOutput:
    deleted: list[Deleted] = []
    errors: list[str] = []
    count = 0
    batch: list[dict] = []

    def flush():
        nonlocal count
        response = s3.call("delete_objects", Bucket=bucket, Delete={"Objects": batch, "Quiet": False})
        for d in response.get("Deleted", []):
            count += 1
            if len(deleted) < 1000:
                deleted.append(
                    Deleted(
                        key=d["Key"],
                        version_id=d.get("VersionId") or d.get("DeleteMarkerVersionId"),
                        delete_marker=bool(d.get("DeleteMarker")),
                    )
                )
        errors.extend(f"{e['Key']}: {e.get('Code')} {e.get('Message', '')}" for e in response.get("Errors", []))
        batch.clear()
        ctx.log(f"deleted {count} so far")

    for target in targets:
        batch.append(target)
        if len(batch) == 1000:
            flush()
    if batch:
        flush()
    if count == 0 and not errors:
        raise StorageError("Nothing matched: no object was deleted.", code="NoSuchKey")
    return DeleteOutput(deleted=deleted, count=count, versioning=versioning, errors=errors[:100])
