"""Anchors without waste: beat anchors a head once, not every period while the console is
idle, and the newest anchor is read from the end of the anchor file, not the whole file."""

import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.audit import anchors, tasks
from apps.audit.anchors import AnchorRefused, anchor_at_shutdown, anchor_path, newest_anchor, write_anchor
from apps.audit.verify import verify_chain
from apps.audit.writer import record

from .test_chain import raw


@pytest.fixture(autouse=True)
def anchor_file(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_PATH = str(tmp_path / "anchors.jsonl")


@pytest.fixture
def beat_clock(monkeypatch):
    """Each anchor is signed one beat period (10 s) after the one before: several periods, no sleeping."""
    now = [timezone.now()]

    def tick():
        now[0] += timedelta(seconds=10)
        return now[0]

    monkeypatch.setattr(anchors, "clock", tick)


def record_events(n):
    for i in range(n):
        record(operation="test.op", outcome="ok", channel="system", target=f"t{i}")


def file_anchors():
    return [json.loads(line)["anchor"] for line in anchor_path().read_text().splitlines()]


def test_an_idle_console_adds_no_anchor_until_the_head_moves(db, beat_clock):
    record_events(3)
    first = tasks.anchor()
    assert [tasks.anchor() for _ in range(6)] == [None] * 6  # six beat periods, nothing written since
    assert file_anchors() == [first["anchor"]]
    record_events(1)
    second = tasks.anchor()
    assert [(a["seq"], a["reason"]) for a in file_anchors()] == [(3, "periodic"), (4, "periodic")]
    assert second["anchor"]["at"] > first["anchor"]["at"] and tasks.anchor() is None
    anchor_at_shutdown()  # a clean stop still signs the head it leaves, moved or not
    assert [(a["seq"], a["reason"]) for a in file_anchors()][-1] == (4, "shutdown")
    assert verify_chain().window == ""


def test_a_tail_cut_on_an_idle_console_is_still_caught_and_never_anchored(db, beat_clock):
    record_events(5)
    tasks.anchor()
    raw("DELETE FROM audit_auditevent WHERE seq = 5")
    # An anchor of the shorter log would end the file below #5, where the reader of its last line stops.
    with pytest.raises(AnchorRefused, match="ends at #4, before the newest anchor #5"):
        tasks.anchor()
    with pytest.raises(AnchorRefused, match="before the newest anchor #5"):
        write_anchor("manual")
    with pytest.raises(CommandError, match="before the newest anchor #5"):  # the command says why, no traceback
        call_command("audit_anchor")
    assert [a["seq"] for a in file_anchors()] == [5]
    result = verify_chain()
    assert (result.ok, result.seq) == (False, 5) and "the log ends before anchor #5" in result.problem


def test_the_newest_anchor_is_read_from_the_end_of_a_large_file(db, monkeypatch):
    record_events(2)
    older = write_anchor()
    record_events(1)
    newest = write_anchor()
    # Megabytes of older anchors behind a first line no JSON reader gets past, and a last line
    # without a newline: only a reader that starts from the end finds the newest anchor.
    filler = (json.dumps(older) + "\n").encode() * 12_000
    anchor_path().write_bytes(b"not json: read from the start\n" + filler + json.dumps(newest).encode())
    assert anchor_path().stat().st_size > 3_000_000
    assert newest_anchor() == newest and verify_chain().window == ""
    monkeypatch.setattr(anchors, "TAIL_BLOCK", 7)  # the last line spread over many blocks
    assert newest_anchor() == newest
    assert tasks.anchor() is None  # the head has not moved since the last line
    record_events(1)
    third = write_anchor()
    *_, before, last = anchor_path().read_text().splitlines()
    assert (json.loads(before), json.loads(last)) == (newest, third) and newest_anchor() == third


def test_unsigned_and_blank_last_lines_are_passed_over(db):
    record_events(2)
    entry = write_anchor()
    with open(anchor_path(), "a", encoding="utf-8") as fh:
        fh.write('{"seq": 9, "hash": "an unsigned checkpoint of an earlier version"}\n\n')
    assert newest_anchor() == entry
