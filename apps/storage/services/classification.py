"""What a write may do to an object that is already there, and storage.reclassify.

An object's classification tag decides whether deleting it needs approval
(storage.delete's rule, `deletion_needs_approval`). So every write path that puts
an object (storage.upload, the direct upload, storage.replicate) first asks
`check_write`, before any byte is written:
- writing over an object whose deletion needs approval destroys it unless the
  bucket keeps versions: refused (delete it through the approved delete first);
- writing an object with a lower classification than the one it replaces lowers
  a guard: refused on every write path — storage.reclassify is the one way to lower
  a classification, and someone other than the requester approves it.
Raising a classification stays immediate.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.urls import reverse
from pydantic import BaseModel, Field

from apps.core.errors import OpsError
from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from ..client import MISSING, S3, StorageError, connect
from .common import (
    CLASSIFICATION_TAG,
    Classification,
    ObjectRef,
    classification_of,
    deletion_needs_approval,
    must_exist,
    object_target,
    tags_of,
)
from .objects import versioning_of

ORDER = list(Classification)  # public < internal < confidential < restricted


class ClassificationGuard(OpsError):
    """A write that would destroy a protected object or lower its classification without approval."""

    outcome = "denied"
    status_code = 409


def lowers(before: Classification | None, after: Classification | None) -> bool:
    """Is `after` a lower classification than `before`? No classification ranks lowest."""
    rank = {None: -1, **{c: i for i, c in enumerate(ORDER)}}
    return rank[after] < rank[before]


def _name(classification: Classification | None) -> str:
    return classification.value if classification else "unclassified"


def check_write(
    s3: S3, bucket: str, key: str, classification: Classification | None, *, replaceable: Callable[[dict], bool] | None = None
) -> None:
    """Refuse, before any byte is written, a write over `key` that would destroy an object whose deletion
    needs approval (the bucket keeps no versions) or lower its classification. `replaceable(head)` says the
    object there is the caller's own earlier write (a resumed backup's): replacing it takes nothing from anyone."""
    head = s3.optional("head_object", tuple(MISSING), Bucket=bucket, Key=key)
    if head is None:
        return  # nothing there (or only a delete marker, older versions kept): nothing to protect
    if replaceable is not None and replaceable(head):
        return
    try:
        before = classification_of(tags_of(s3, bucket, key))
    except StorageError as exc:
        if exc.code in MISSING:
            return  # deleted meanwhile
        raise
    where = f"{s3.conn.name}:{bucket}/{key}"
    if lowers(before, classification):
        raise ClassificationGuard(
            f"{where} is classified {_name(before)}: writing it as {_name(classification)} would lower its classification. "
            f"Lower it with storage.reclassify (someone else approves), or upload under another key."
        )
    if deletion_needs_approval(before) and versioning_of(s3, bucket) != "Enabled":
        raise ClassificationGuard(
            f"{where} is classified {_name(before)} and bucket {bucket} keeps no versions: writing over it would destroy it. "
            f"Delete it through storage.delete first (someone else approves), or upload under another key."
        )


# --- storage.reclassify -------------------------------------------------------------


class ReclassifyInput(ObjectRef):
    classification: Classification = Field(description="The new classification (the object's `classification` tag).")


class ReclassifyOutput(BaseModel):
    key: str
    version_id: str | None
    before: str | None
    after: str


def _current(params: ReclassifyInput) -> tuple[S3, dict, dict[str, str]]:
    s3 = connect(params.connection)
    head = must_exist(s3, params.bucket, params.key, params.version_id)
    return s3, head, tags_of(s3, params.bucket, params.key, params.version_id)


def reclassify_scope(params: ReclassifyInput) -> str | None:
    """Lowering waits for someone else's approval; raising (or keeping) is immediate."""
    try:
        _, _, tags = _current(params)
    except StorageError as exc:
        if exc.code in MISSING:
            return None  # nothing to protect: the operation itself will say so
        return ""  # cannot tell: be safe
    except OpsError:
        return ""
    return "" if lowers(classification_of(tags), params.classification) else None


def plan_reclassify(ctx: Context, params: ReclassifyInput) -> dict:
    """The object (its version and ETag, so a replaced object drifts) and its classification before → after."""
    _, head, tags = _current(params)
    before = classification_of(tags)
    query = {"key": params.key, **({"version_id": params.version_id} if params.version_id else {})}
    return {
        "summary": f"Reclassify {object_target(params)}: {_name(before)} → {params.classification.value}.",
        "object": {"key": params.key, "version_id": head.get("VersionId"), "etag": head.get("ETag", ""), "size": head["ContentLength"]},
        "before": {"classification": before.value if before else None},
        "after": {"classification": params.classification.value},
        "links": {"object": reverse("storage:object", args=[params.connection, params.bucket]) + "?" + urlencode(query)},
    }


@operation(
    "storage.reclassify",
    risk=Risk.RISKY,
    guard=True,
    planner=plan_reclassify,
    approval_scope=reclassify_scope,
    target=object_target,
)
def reclassify(ctx: Context, params: ReclassifyInput) -> ReclassifyOutput:
    """Change an object's classification tag (its other tags stay). Raising it is immediate; lowering it
    (e.g. confidential → public, after which deleting it needs no approval) waits for someone else's approval."""
    s3, head, tags = _current(params)
    before = classification_of(tags)
    tags[CLASSIFICATION_TAG] = params.classification.value
    extra = {"VersionId": params.version_id} if params.version_id else {}
    tag_set = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
    s3.call("put_object_tagging", Bucket=params.bucket, Key=params.key, Tagging={"TagSet": tag_set}, **extra)
    return ReclassifyOutput(
        key=params.key,
        version_id=head.get("VersionId"),
        before=before.value if before else None,
        after=params.classification.value,
    )
