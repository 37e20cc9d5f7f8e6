"""Anchors: the chain head (seq, link, key id), signed with the console's Ed25519 key and
written where the database's writer cannot rewrite it — the anchor file and, with
AUDIT_CHECKPOINT_BUCKET set, its own object in a bucket (object-locked when the bucket
has Object Lock). Written every AUDIT_ANCHOR_SECONDS by beat (only when the head moved)
and at clean shutdown of the web and worker processes; `audit_verify` compares the log
with the newest one it reaches.

The file's lines are in seq order (write_anchor appends under a lock and never anchors a
head behind the newest anchor), so its newest anchor is its last signed line, read from
the end of the file."""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.core.errors import OperationFailed
from opsconsole_audit_verify.chain import signature_ok, signed_message

from . import keys, offsite
from .models import AuditEvent, AuditSink
from .writer import DURABILITY_BARRIER, record

ANCHOR_OPERATION = "audit.anchor"
# How much of the anchor file is read at a time, from its end, to find its last line.
TAIL_BLOCK = 64 * 1024

log = logging.getLogger(__name__)
clock = timezone.now


class AnchorRefused(OperationFailed):
    """The log ends before, or differs from, the newest anchor: anchoring it would hide that."""


def signed(payload: dict) -> dict:
    return {"anchor": payload, "signature": keys.sign(signed_message(payload)), "signer": keys.public_fingerprint()}


def is_authentic(entry: dict) -> bool:
    return isinstance(entry.get("anchor"), dict) and signature_ok(
        keys.signing_key().public_key(), entry["anchor"], entry.get("signature", "")
    )


def anchor_path() -> Path:
    return Path(settings.AUDIT_CHECKPOINT_PATH)


def _durable_head() -> dict | None:
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        # An append's commit may still be in the WAL buffer (writer.py): anchor only what a crash keeps.
        with connection.cursor() as cursor:
            cursor.execute(DURABILITY_BARRIER)
    return AuditEvent.objects.order_by("-seq").values("seq", "hash", "key_id", "at").first()


def write_anchor(reason: str = "periodic") -> dict | None:
    """Sign the current head and append it to the anchor file (fsync), then copy it to the
    bucket, if one is set (a failure there raises CheckpointError after the file is written).
    None when the log is empty, and for a periodic anchor when the newest one already vouches
    for the head (nothing was written since): that anchor is only copied to the bucket if the
    bucket lacks it. A shutdown or manual anchor is always written."""
    path = anchor_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # one anchoring process at a time: the lines stay in seq order
        last, head = _newest_in(fh), _durable_head()
        if head is None:
            return None
        if last is not None:
            _refuse_if_behind(last["anchor"], head)
        idle = reason == "periodic" and last is not None and _vouches_for(last, head)
        if not idle:
            entry = signed({"kind": "head", "seq": head["seq"], "hash": head["hash"], "key_id": head["key_id"],
                            "at": clock().isoformat(), "reason": reason})  # fmt: skip
            _append(fh, entry)
    if idle:
        offsite.ensure(last)
        return None
    offsite.store(entry)
    _to_stream(entry, head)
    return entry


def _vouches_for(entry: dict, head: dict) -> bool:
    return (entry["anchor"]["seq"], entry["anchor"]["hash"]) == (head["seq"], head["hash"]) and is_authentic(entry)


def _refuse_if_behind(anchor: dict, head: dict) -> None:
    """An anchor of a head behind the newest anchor would end the file with a lower seq than an
    earlier line, and the cut tail would go unseen by the reader of the last line."""
    if head["seq"] < anchor["seq"]:
        raise AnchorRefused(f"The audit log ends at #{head['seq']}, before the newest anchor #{anchor['seq']} "
                            f"of {anchor['at']}: not anchored (audit_verify says what was removed).")  # fmt: skip
    if head["seq"] == anchor["seq"] and head["hash"] != anchor["hash"]:
        raise AnchorRefused(f"Event #{head['seq']} differs from the newest anchor of {anchor['at']}: not anchored.")


def _append(fh: BinaryIO, entry: dict) -> None:
    size = fh.seek(0, os.SEEK_END)
    if size:
        fh.seek(size - 1)
    # A last line without a newline (the file edited by hand) stays a line of its own.
    torn = size > 0 and fh.read(1) != b"\n"
    fh.write((b"\n" if torn else b"") + json.dumps(entry).encode() + b"\n")
    fh.flush()
    os.fsync(fh.fileno())


def _to_stream(entry: dict, head: dict) -> None:
    """The signed anchor also goes to the SIEM sinks, as an `audit.anchor` event they stream like any
    other: off the machine, out of the database writer's reach. Only while a sink is enabled, and once
    per new head: an anchor of a head that is itself an anchor event says nothing new (an idle console
    adds no events)."""
    if not AuditSink.objects.filter(enabled=True).exists():
        return
    if AuditEvent.objects.filter(seq=head["seq"], operation=ANCHOR_OPERATION).exists():
        return
    record(operation=ANCHOR_OPERATION, outcome="ok", channel="system", target=f"#{head['seq']}",
           params={"seq": head["seq"], "hash": head["hash"], "key_id": head["key_id"], "signature": entry["signature"],
                   "signer": entry["signer"], "at": entry["anchor"]["at"]})  # fmt: skip


def anchor_at_shutdown(**_signal_kwargs) -> None:
    """A clean stop anchors the head it leaves behind; a failure is logged, never blocks the stop."""
    try:
        write_anchor("shutdown")
    except Exception:
        log.exception("the audit anchor at shutdown was not written")


def _lines_from_end(fh: BinaryIO) -> Iterator[bytes]:
    """The file's lines, last first, read back from its end a block at a time (never the whole
    file); a last line without a newline is a line too."""
    end, rest = fh.seek(0, os.SEEK_END), b""
    while end > 0:
        start = max(0, end - TAIL_BLOCK)
        fh.seek(start)
        lines = (fh.read(end - start) + rest).split(b"\n")
        rest, end = lines.pop(0), start  # the first piece may continue in the block before
        yield from reversed(lines)
    yield rest


def _newest_in(fh: BinaryIO) -> dict | None:
    """The file's newest anchor: its last signed line. Lines without a signature are the unsigned
    checkpoints of earlier versions: no evidence."""
    for line in _lines_from_end(fh):
        entry = json.loads(line) if line.strip() else {}
        if "signature" in entry:
            return entry
    return None


def _file_newest() -> dict | None:
    try:
        with open(anchor_path(), "rb") as fh:
            return _newest_in(fh)
    except FileNotFoundError:
        return None


def newest_anchor() -> dict | None:
    """The newest anchor (highest seq) of the file and the bucket, signature not yet checked."""
    local = _file_newest()
    # From the file's newest seq on, not past it: a delete marker or another version over the bucket's
    # copy of that anchor is tampering too (the bucket's copy of the same head stands in for it).
    remote = offsite.newest(after_seq=local["anchor"]["seq"] - 1 if local else 0)
    return remote or local
