"""Anchors: the chain head (seq, link, key id), signed with the console's Ed25519 key and
written where the database's writer cannot rewrite it — the anchor file and, with
AUDIT_CHECKPOINT_BUCKET set, its own object in a bucket (object-locked when the bucket
has Object Lock). Written every AUDIT_ANCHOR_SECONDS by beat and at clean shutdown of the
web and worker processes; `audit_verify` compares the log with the newest one it reaches."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone

from opsconsole_audit_verify.chain import signature_ok, signed_message

from . import keys, offsite
from .models import AuditEvent, AuditSink
from .writer import DURABILITY_BARRIER, record

ANCHOR_OPERATION = "audit.anchor"

log = logging.getLogger(__name__)


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
    bucket, if one is set (a failure there raises CheckpointError after the file is written)."""
    head = _durable_head()
    if head is None:
        return None
    entry = signed(
        {
            "kind": "head",
            "seq": head["seq"],
            "hash": head["hash"],
            "key_id": head["key_id"],
            "at": timezone.now().isoformat(),
            "reason": reason,
        }
    )
    path = anchor_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    offsite.store(entry)
    _to_stream(entry, head)
    return entry


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


def _file_newest() -> dict | None:
    path = anchor_path()
    newest = None
    if path.exists():
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                entry = json.loads(line) if line.strip() else {}
                # Lines without a signature are the unsigned checkpoints of earlier versions: no evidence.
                if "signature" in entry and (newest is None or entry["anchor"]["seq"] >= newest["anchor"]["seq"]):
                    newest = entry
    return newest


def newest_anchor() -> dict | None:
    """The newest anchor (highest seq) of the file and the bucket, signature not yet checked."""
    local = _file_newest()
    remote = offsite.newest(after_seq=local["anchor"]["seq"] if local else 0)
    return remote or local
