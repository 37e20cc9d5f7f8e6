"""Off-machine copies of the audit anchors: with AUDIT_CHECKPOINT_BUCKET set
("<connection>/<bucket>/<prefix>"), each signed anchor is also its own object
`<prefix>/checkpoint-<seq, 12 digits>-<UTC time>.json` (S3 has no append), so a
cut-off tail stays detectable when the machine's anchor file is lost or rewritten.
In a bucket with S3 Object Lock enabled each object is locked (AUDIT_ANCHOR_LOCK_MODE,
AUDIT_ANCHOR_LOCK_DAYS): not even the holder of the connection's credentials can delete
or overwrite it before then. Keys sort by seq, so the newest anchor is found with a few
one-key listings (S3 lists forward from any key), however many anchors the bucket holds.
The S3 connections are the storage app's, above this one: it provides them through core's hooks."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings

from apps.core import hooks
from apps.core.errors import OperationFailed, OpsError

NAME = "checkpoint-"


class CheckpointError(OperationFailed):
    """The checkpoint bucket could not be written or read; the message says which and why."""


def _place() -> tuple[str, str, str] | None:
    value = settings.AUDIT_CHECKPOINT_BUCKET.strip().strip("/")
    if not value:
        return None
    connection, _, rest = value.partition("/")
    bucket, _, prefix = rest.partition("/")
    if not connection or not bucket:
        raise CheckpointError(f"AUDIT_CHECKPOINT_BUCKET={value!r}: write it as <connection>/<bucket>/<prefix>.")
    return connection, bucket, (prefix.strip("/") + "/" if prefix.strip("/") else "")


def _key_prefix(prefix: str) -> str:
    return prefix + NAME


def key_for(prefix: str, entry: dict) -> str:
    anchor = entry["anchor"]
    stamp = datetime.fromisoformat(anchor["at"]).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{_key_prefix(prefix)}{anchor['seq']:012d}-{stamp}.json"


def _lock_args(s3, bucket: str, entry: dict) -> dict:
    config = s3.optional("get_object_lock_configuration", ("ObjectLockConfigurationNotFoundError",), Bucket=bucket)
    if not config or config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
        return {}
    until = datetime.fromisoformat(entry["anchor"]["at"]) + timedelta(days=settings.AUDIT_ANCHOR_LOCK_DAYS)
    return {"ObjectLockMode": settings.AUDIT_ANCHOR_LOCK_MODE, "ObjectLockRetainUntilDate": until}


def _where(entry: dict) -> tuple[str, str, str] | None:
    """(connection, bucket, key) of an anchor's object, or None when no bucket is set."""
    place = _place()
    if place is None:
        return None
    connection, bucket, prefix = place
    return connection, bucket, key_for(prefix, entry)


def store(entry: dict) -> str | None:
    """PUT the signed anchor as its own object (the connection's default encryption, locked
    where the bucket has Object Lock); its key."""
    where = _where(entry)
    if where is None:
        return None
    connection, bucket, key = where
    try:
        buckets = hooks.buckets()
        s3 = buckets.connect(connection)
        args = buckets.write_args(s3, classification=None, content_type="application/json") | _lock_args(s3, bucket, entry)
        s3.call("put_object", Bucket=bucket, Key=key, Body=json.dumps(entry).encode(), **args)
    except OpsError as exc:
        raise CheckpointError(f"Audit anchor #{entry['anchor']['seq']} was not copied to {connection}/{bucket}: {exc.message}") from exc
    return key


def ensure(entry: dict) -> str | None:
    """Copy an anchor of the file to the bucket unless it is there already (its copy failed, or the
    bucket was set since): an idle console checks with one HEAD request instead of a new object."""
    where = _where(entry)
    if where is None:
        return None
    connection, bucket, key = where
    try:
        buckets = hooks.buckets()
        found = buckets.connect(connection).optional("head_object", tuple(buckets.missing), Bucket=bucket, Key=key)
    except OpsError as exc:
        raise CheckpointError(f"Audit anchor #{entry['anchor']['seq']} was not checked in {connection}/{bucket}: {exc.message}") from exc
    return key if found else store(entry)


def newest(after_seq: int = 0) -> dict | None:
    """The bucket's newest anchor past `after_seq` (keys sort by seq), or None. Versions count, not
    listings: an anchor hidden behind a delete marker is still found (its locked version stays), and
    the marker fails the check, as does any version of its object that does not hold the anchor its
    name says (an older genuine anchor written over the newest one, or under a later name, to hide a
    cut tail) — the console writes each object once and never deletes one."""
    place = _place()
    if place is None:
        return None
    connection, bucket, prefix = place
    names = _key_prefix(prefix)
    try:
        s3 = hooks.buckets().connect(connection)
        versions = _newest_versions(s3, bucket, names, after_seq)
        if not versions:
            return None
        key = versions[0]["Key"]
        held = [b"".join(s3.open(bucket, key, version_id=_version_id(v))[1]) for v in versions if not v["DeleteMarker"]]
    except OpsError as exc:
        raise CheckpointError(f"The audit anchors in {connection}/{bucket} could not be read: {exc.message}") from exc
    entry = _anchor_in(held[0]) if held else None
    seq = entry.get("anchor", {}).get("seq") if isinstance(entry, dict) else None
    if any(body != held[0] for body in held) or not isinstance(seq, int) or key[len(names) : len(names) + 12] != f"{seq:012d}":
        raise _tampered(bucket, key)
    _refuse_delete_markers(bucket, versions, seq)
    return entry


def _anchor_in(body: bytes):
    try:
        return json.loads(body)
    except ValueError:
        return None


def _version_id(version: dict) -> str | None:
    """The version to GET ("null" names the one object of a bucket without versioning)."""
    return None if version["VersionId"] == "null" else version["VersionId"]


def _refuse_delete_markers(bucket: str, versions: list[dict], seq: int) -> None:
    """A delete marker over an anchor fails verification: the console never deletes one, so only someone
    with the bucket's credentials put it there, to hide the anchor (and the tail it vouches for) from
    listings. The anchor itself was found behind it; saying "intact" would still hide the tampering."""
    markers = [v for v in versions if v["DeleteMarker"]]
    if markers:
        when = ", ".join(str(m["LastModified"]) for m in markers)
        raise CheckpointError(
            f"{bucket}/{markers[0]['Key']}, the newest anchor (#{seq}), has a delete marker (of {when}): someone with "
            "the bucket's credentials hid it from listings; its locked version stays. The bucket's anchors were "
            "tampered with: investigate before removing the marker (docs/audit.md, section 2)."
        )


def _newest_versions(s3, bucket: str, names: str, after_seq: int) -> list[dict]:
    """Every version and delete marker of the newest anchor's key past `after_seq`: the newest key a
    listing shows, unless keys hidden behind delete markers lie beyond it (only those are listed)."""
    visible = _newest_key(s3, bucket, names, after_seq)
    # S3 lists versions past the marker; moto also skips the marker key's newest version: either way
    # the marker is no candidate, and a hidden key has at least two entries (its version, the marker).
    marker = visible or f"{names}{after_seq:012d}."
    hidden = [v["Key"] for v in s3.versions(bucket, names, key_marker=marker)]
    last = max([*hidden, *([visible] if visible else [])], default=None)
    return [] if last is None else [v for v in s3.versions(bucket, last) if v["Key"] == last]


def _newest_key(s3, bucket: str, names: str, after_seq: int) -> str | None:
    """The last key under `names` past `after_seq`, in O(log n) one-key listings instead of a listing
    of every anchor: gallop up from the first key past `after_seq` until nothing lies beyond, halve the
    gap to the highest seq present, then list the few keys of that seq (and any odd name after them)."""
    first = _first_after(s3, bucket, names)
    key = first(after_seq)
    if key is None:
        return None
    low, step = _seq_in(bucket, key, names), 1
    while (found := first(low + step)) is not None:  # no anchor lies past `low + step` once this ends
        low, step = _seq_in(bucket, found, names), step * 2
    high = low + step
    while low < high:  # an anchor at `low`, none past `high`
        mid = (low + high) // 2
        found = first(mid)
        low, high = (low, mid) if found is None else (_seq_in(bucket, found, names), high)
    tail = deque(s3.objects(bucket, names, start_after=f"{names}{low - 1:012d}."), maxlen=1)
    return tail[0]["Key"] if tail else key


def _first_after(s3, bucket: str, names: str) -> Callable[[int], str | None]:
    def first(seq: int) -> str | None:
        page = s3.call("list_objects_v2", Bucket=bucket, Prefix=names, StartAfter=f"{names}{seq:012d}.", MaxKeys=1)
        return page["Contents"][0]["Key"] if page.get("Contents") else None

    return first


def _seq_in(bucket: str, key: str, names: str) -> int:
    digits = key[len(names) : len(names) + 12]
    if not (digits.isdigit() and len(digits) == 12):
        raise _tampered(bucket, key)
    return int(digits)


def _tampered(bucket: str, key: str) -> CheckpointError:
    return CheckpointError(f"{bucket}/{key} does not hold the anchor its name says: the bucket's anchors were tampered with.")
