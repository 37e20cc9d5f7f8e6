"""Chain verification: every link in order, then the head against the newest signed anchor."""

from __future__ import annotations

from dataclasses import dataclass

from opsconsole_audit_verify.chain import GENESIS, KeyOrder, key_change_problem

from . import anchors, keys
from .chain import expected_link, row_values
from .models import AuditEvent, Prune

BATCH = 5000


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    problem: str = ""
    seq: int | None = None
    # What no anchor vouches for yet (a tail that could still be cut off unnoticed).
    window: str = ""


class _Broken(Exception):
    def __init__(self, problem: str, seq: int | None, checked: int | None = None):
        super().__init__(problem)
        self.problem, self.seq, self.checked = problem, seq, checked


def _start() -> tuple[int, str, str | None]:
    """(first seq, the hash it links to, the key id before it): genesis, or the signed anchor of the last prune."""
    prune = Prune.objects.first()
    if prune is None:
        return 1, GENESIS, None
    anchor = prune.anchor.get("anchor", {})
    if not anchors.is_authentic(prune.anchor) or anchor.get("seq") != prune.through_seq or anchor.get("kind") != "prune":
        raise _Broken(f"the prune through #{prune.through_seq} has no valid signed anchor: the log's start cannot be vouched for", None)
    return anchor["seq"] + 1, anchor["hash"], anchor["key_id"]


def link_problem(ring: dict[str, bytes], order: KeyOrder, event: AuditEvent, prev_hash: str, prev_key: str | None) -> str:
    """Why `event` does not follow a link `prev_hash` of key `prev_key` (None: unknown) in the chain, nor
    keeps the chain's keys moving forward (`order`, fed every event in seq order); "" when it does."""
    if event.prev_hash != prev_hash:
        return f"event #{event.seq} does not link to the event before it"
    values = row_values(event)
    problem = key_change_problem(values, prev_key) or order.problem(values)
    if problem:
        return f"event #{event.seq} {problem}"
    link = expected_link(ring, prev_hash, event)
    if link is None:
        return f"event #{event.seq} is linked with key {event.key_id}, which is not in the chain key ring"
    if link != event.hash:
        return f"event #{event.seq} was altered (its link does not match its content)"
    return ""


def _walk() -> tuple[int, int]:
    """Check every link; (events checked, head seq)."""
    expected_seq, prev_hash, prev_key = _start()
    ring, checked = keys.chain_ring(), 0
    order = KeyOrder(ring, start=prev_key)
    cursor = expected_seq - 1
    while True:
        batch = list(AuditEvent.objects.filter(seq__gt=cursor).order_by("seq")[:BATCH])
        if not batch:
            return checked, expected_seq - 1
        for event in batch:
            seq = event.seq
            if seq != expected_seq:
                raise _Broken(f"missing event(s): expected #{expected_seq}, found #{seq}", expected_seq, checked)
            problem = link_problem(ring, order, event, prev_hash, prev_key)
            if problem:
                raise _Broken(problem, seq, checked)
            prev_hash, prev_key, expected_seq, checked = event.hash, event.key_id, seq + 1, checked + 1
        cursor = batch[-1].seq


def anchor_problem(entry: dict, head_seq: int) -> tuple[str, int | None]:
    """(why the log, ending at `head_seq`, disagrees with this anchor, the seq concerned); ("", None) when it agrees."""
    if not anchors.is_authentic(entry):
        return "the newest anchor has no valid signature: it was forged or altered", None
    anchor = entry["anchor"]
    row = AuditEvent.objects.filter(seq=anchor["seq"]).values_list("hash", flat=True).first()
    if row is None and anchor["seq"] > head_seq:
        return f"the log ends before anchor #{anchor['seq']} of {anchor['at']}: newest events were removed", anchor["seq"]
    if row is not None and row != anchor["hash"]:
        return f"event #{anchor['seq']} differs from the anchor of {anchor['at']}", anchor["seq"]
    return "", None


def _against_anchor(head_seq: int) -> str:
    """Compare the log with the newest anchor; the window it cannot vouch for."""
    entry = anchors.newest_anchor()
    if entry is None:
        return f"no anchor reached: a cut-off tail cannot be detected (events up to #{head_seq} are not anchored)"
    problem, seq = anchor_problem(entry, head_seq)
    if problem:
        raise _Broken(problem, seq)
    anchor = entry["anchor"]
    if head_seq > anchor["seq"]:
        return f"events after #{anchor['seq']} (anchored at {anchor['at']}) are not yet anchored: #{anchor['seq'] + 1}–#{head_seq}"
    return ""


def verify_chain() -> VerifyResult:
    checked = 0
    try:
        checked, head_seq = _walk()
        window = _against_anchor(head_seq)
    except _Broken as exc:
        return VerifyResult(False, checked if exc.checked is None else exc.checked, exc.problem, exc.seq)
    return VerifyResult(True, checked, window=window)
