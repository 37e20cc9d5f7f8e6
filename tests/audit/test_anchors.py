"""Anchors: the chain head signed with the console's Ed25519 key and kept outside the
database, written every few seconds and at clean shutdown; audit_verify checks the log
against the newest one and says what no anchor vouches for yet."""

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from apps.audit import tasks
from apps.audit.anchors import anchor_path, is_authentic, newest_anchor, signed, write_anchor
from apps.audit.models import AuditEvent
from apps.audit.verify import verify_chain
from apps.audit.writer import record
from opsconsole_audit_verify.chain import signed_message
from tests.monitoring.peers import wait_for
from tests.support import processes

from .test_chain import raw


@pytest.fixture(autouse=True)
def anchor_file(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_PATH = str(tmp_path / "anchors.jsonl")


# The run's anchor file (read before any test overrides the setting): the session's worker writes there.
RUN_ANCHOR_FILE = Path(django_settings.AUDIT_CHECKPOINT_PATH)


def record_events(n):
    return [record(operation="test.op", outcome="ok", channel="system", target=f"t{i}") for i in range(n)]


def test_beat_anchors_at_least_every_ten_seconds_by_default():
    assert django_settings.CELERY_BEAT_SCHEDULE["audit-anchor"]["schedule"] <= timedelta(seconds=10)
    assert django_settings.CELERY_BEAT_SCHEDULE["audit-anchor"]["task"] == tasks.anchor.name


def test_tail_deleted_right_after_writing_is_detected_through_the_anchor(db):
    record_events(5)
    tasks.anchor()  # what beat runs
    raw("DELETE FROM audit_auditevent WHERE seq = 5")
    result = verify_chain()
    assert (result.ok, result.seq) == (False, 5) and "the log ends before anchor #5" in result.problem


def test_anchor_is_signed_and_a_forged_one_is_rejected(db):
    record_events(3)
    entry = write_anchor()
    assert is_authentic(entry) and entry["anchor"]["hash"] == AuditEvent.objects.get(seq=3).hash
    # The insider cuts the tail and writes an anchor that matches the shorter log, without the signing key.
    raw("DELETE FROM audit_auditevent WHERE seq = 3")
    forged = {**entry, "anchor": {**entry["anchor"], "seq": 2, "hash": AuditEvent.objects.get(seq=2).hash}}
    anchor_path().write_text(json.dumps(forged) + "\n")
    assert not is_authentic(forged)
    result = verify_chain()
    assert not result.ok and "no valid signature" in result.problem


def test_verify_states_the_window_no_anchor_vouches_for(db, capsys):
    record_events(2)
    assert "no anchor reached" in verify_chain().window
    write_anchor()
    record_events(3)
    result = verify_chain()
    anchored_at = newest_anchor()["anchor"]["at"]
    assert result.ok and result.window == f"events after #2 (anchored at {anchored_at}) are not yet anchored: #3–#5"
    call_command("audit_verify")
    assert "Not vouched for: events after #2" in capsys.readouterr().out
    write_anchor()
    assert verify_chain().window == ""


def test_an_anchor_signed_by_another_key_is_rejected(db):
    record_events(2)
    entry = signed({"kind": "head", "seq": 2, "hash": AuditEvent.objects.get(seq=2).hash, "key_id": "", "at": "2026-01-01T00:00:00+00:00"})
    entry["signature"] = base64.b64encode(Ed25519PrivateKey.generate().sign(signed_message(entry["anchor"]))).decode()
    anchor_path().write_text(json.dumps(entry) + "\n")
    with pytest.raises(CommandError, match="no valid signature"):
        call_command("audit_verify")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("start", ["worker", "web"])
def test_clean_shutdown_anchors_the_head(start, tmp_path):
    path = tmp_path / f"{start}-anchors.jsonl"
    if start == "worker":
        proc = processes.start_worker(AUDIT_CHECKPOINT_PATH=str(path))
    else:
        proc, _url = processes.start_console(AUDIT_CHECKPOINT_PATH=str(path))
    try:
        record_events(4)
    finally:
        proc.stop(timeout=60)
    wait_for(path.exists, timeout=10, what="the anchor file")
    (line,) = path.read_text().splitlines()
    anchor = json.loads(line)["anchor"]
    assert (anchor["seq"], anchor["reason"]) == (4, "shutdown")
    assert anchor["hash"] == AuditEvent.objects.get(seq=4).hash


@pytest.mark.django_db(transaction=True)
def test_every_n_events_an_anchor_is_queued_and_written_by_the_worker(celery_worker, settings):
    # The worker writes to the anchor file of its environment (the run's), not this test's.
    path = RUN_ANCHOR_FILE
    settings.AUDIT_CHECKPOINT_PATH, settings.AUDIT_ANCHOR_EVERY_EVENTS = str(path), 3
    record_events(3)

    def anchored_head():
        lines = path.read_text().splitlines() if path.exists() else []
        return any(json.loads(line)["anchor"]["seq"] == 3 for line in lines)

    try:
        wait_for(anchored_head, timeout=60, what="the worker to anchor event #3")
    finally:
        path.unlink(missing_ok=True)  # the run's file: leave no anchor of this test's log behind
