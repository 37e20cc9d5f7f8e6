"""Chain verification and head checkpoints."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from . import offsite
from .chain import GENESIS, compute_hash
from .models import AuditEvent

BATCH = 5000


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    problem: str = ""
    seq: int | None = None


def verify_chain() -> VerifyResult:
    """Recompute every link in order; stop at the first broken or missing one."""
    prev_hash, expected_seq, checked = GENESIS, 1, 0
    cursor = 0
    while True:
        batch = list(AuditEvent.objects.filter(seq__gt=cursor).order_by("seq")[:BATCH])
        if not batch:
            break
        for event in batch:
            if event.seq != expected_seq:
                return VerifyResult(False, checked, f"missing event(s): expected #{expected_seq}, found #{event.seq}", expected_seq)
            if event.prev_hash != prev_hash:
                return VerifyResult(False, checked, f"event #{event.seq} does not link to the event before it", event.seq)
            if compute_hash(prev_hash, event) != event.hash:
                return VerifyResult(False, checked, f"event #{event.seq} was altered (its hash does not match its content)", event.seq)
            prev_hash, expected_seq, checked = event.hash, expected_seq + 1, checked + 1
        cursor = batch[-1].seq
    checkpoint = latest_checkpoint()
    if checkpoint:
        row = AuditEvent.objects.filter(seq=checkpoint["seq"]).values_list("hash", flat=True).first()
        if row is None:
            return VerifyResult(
                False,
                checked,
                f"the log ends before checkpoint #{checkpoint['seq']} of {checkpoint['at']}: newest events were removed",
                checkpoint["seq"],
            )
        if row != checkpoint["hash"]:
            return VerifyResult(
                False, checked, f"event #{checkpoint['seq']} differs from checkpoint of {checkpoint['at']}", checkpoint["seq"]
            )
    return VerifyResult(True, checked)


def checkpoint_path() -> Path:
    return Path(settings.AUDIT_CHECKPOINT_PATH)


def write_checkpoint() -> dict | None:
    """Append the current head (seq, hash) to the checkpoint file, durably; then copy it
    to the checkpoint bucket, if one is set (a failure there raises CheckpointError)."""
    head = AuditEvent.objects.order_by("-seq").values("seq", "hash").first()
    if head is None:
        return None
    entry = {"seq": head["seq"], "hash": head["hash"], "at": timezone.now().isoformat()}
    path = checkpoint_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    offsite.store(entry)
    return entry


def latest_checkpoint() -> dict | None:
    """The newest checkpoint (highest seq) of the file and the checkpoint bucket."""
    path = checkpoint_path()
    last = None
    if path.exists():
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    last = json.loads(line)
    return offsite.newest(after_seq=last["seq"] if last else 0) or last
