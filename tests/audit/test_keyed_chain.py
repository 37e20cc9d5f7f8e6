"""The chain is keyed with a key outside the database: whoever can write the database but
lacks the key cannot rewrite a row and re-link the chain unnoticed."""

import hashlib
import hmac

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps.audit.anchors import write_anchor
from apps.audit.chain import legacy_hash, row_values
from apps.audit.models import AuditEvent
from apps.audit.verify import verify_chain
from apps.audit.writer import record
from opsconsole_audit_verify.chain import GENESIS, KEY_CHANGE, canonical, key_id, link

from .test_chain import raw

KEY_1, KEY_2, WRONG = "a" * 40, "b" * 40, "c" * 40


@pytest.fixture(autouse=True)
def files(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_PATH = str(tmp_path / "anchors.jsonl")
    settings.AUDIT_CHAIN_KEY = KEY_1


def record_events(n, start=0):
    return [record(operation="test.op", outcome="ok", channel="system", target=f"t{i}", params={"i": i}) for i in range(start, start + n)]


def rewrite_from(seq, relink, outcome=None, as_key=None):
    """The insider's attack: change event `seq`'s outcome, then recompute every later link with
    `relink` (under key id `as_key`, when given, from `seq` on)."""
    events = list(AuditEvent.objects.filter(seq__gte=seq).order_by("seq"))
    prev = events[0].prev_hash
    for event in events:
        if outcome and event.seq == seq:
            event.outcome = outcome
        if as_key is not None:
            event.key_id = as_key
        event.prev_hash, event.hash = prev, relink(prev, event)
        prev = event.hash
        raw(
            "UPDATE audit_auditevent SET outcome = %s, key_id = %s, prev_hash = %s, hash = %s WHERE seq = %s",
            [event.outcome, event.key_id, event.prev_hash, event.hash, event.seq],
        )


def append_forged(key: str, *rows: dict) -> None:
    """The insider holding a leaked chain key appends events linked with it after the head. The
    database's guard of retired keys only stops honest writers: they empty it, before and after."""
    head = AuditEvent.objects.order_by("-seq").first()
    prev, seq = head.hash, head.seq
    raw("DELETE FROM audit_retiredchainkey")
    for fields in rows:
        seq += 1
        event = AuditEvent(
            seq=seq, at=timezone.now(), key_id=key_id(key.encode()), prev_hash=prev, channel="system", outcome="ok", **fields
        )
        event.hash = prev = link(key.encode(), prev, row_values(event))
        event.save()
    raw("DELETE FROM audit_retiredchainkey")


def change_back(to: str, from_: str) -> dict:
    return {"operation": KEY_CHANGE, "app": "audit", "params": {"from": key_id(from_.encode()), "to": key_id(to.encode())}}


def test_every_event_records_the_key_that_links_it(db):
    events = record_events(3)
    assert {e.key_id for e in events} == {key_id(KEY_1.encode())}
    assert events[1].hash == link(KEY_1.encode(), events[0].hash, row_values(events[1]))
    assert verify_chain().ok


def test_rewrite_recomputed_with_plain_sha256_is_detected(db):
    record_events(10)
    rewrite_from(4, legacy_hash, outcome="denied", as_key="")
    result = verify_chain()
    assert (result.ok, result.seq) == (False, 4) and "goes back to the unkeyed chain" in result.problem


def test_rewrite_recomputed_with_a_wrong_key_is_detected(db):
    record_events(10)
    rewrite_from(4, lambda prev, e: link(WRONG.encode(), prev, row_values(e)), outcome="denied")
    result = verify_chain()
    assert (result.ok, result.seq, result.checked) == (False, 4, 3) and "altered" in result.problem
    with pytest.raises(CommandError, match="event #4 was altered"):
        call_command("audit_verify")


def test_rewrite_under_a_key_of_the_attackers_own_is_detected(db):
    record_events(10)
    own = key_id(WRONG.encode())
    rewrite_from(4, lambda prev, e: link(WRONG.encode(), prev, row_values(e)), outcome="denied", as_key=own)
    result = verify_chain()
    assert (result.ok, result.seq) == (False, 4) and "without a recorded key change" in result.problem


@pytest.mark.parametrize(
    "column, value", [("actor", "'mallory'"), ("params", "'{\"i\": 99}'"), ("client_ip", "'10.9.9.9'"), ("duration_ms", "7.5")]
)
def test_every_field_is_covered_by_the_link(db, column, value):
    record_events(5)
    raw(f"UPDATE audit_auditevent SET {column} = {value} WHERE seq = 3")
    result = verify_chain()
    assert (result.ok, result.seq) == (False, 3)


def test_canonical_form_leaves_out_empty_fields_so_a_new_field_keeps_old_links():
    values = {"seq": 1, "operation": "x", "target": "", "params": {}, "client_ip": None}
    assert canonical(values) == canonical({**values, "correlation_id": ""}) == '{"operation":"x","seq":1}'
    assert canonical({**values, "correlation_id": "req-1"}) != canonical(values)


def test_rotation_is_recorded_in_the_chain_and_old_keys_still_verify(db, settings):
    record_events(3)
    settings.AUDIT_CHAIN_KEY = f"{KEY_1},{KEY_2}"
    record_events(2, start=3)
    change = AuditEvent.objects.get(seq=4)
    assert change.operation == KEY_CHANGE and change.params == {"from": key_id(KEY_1.encode()), "to": key_id(KEY_2.encode())}
    assert change.key_id == key_id(KEY_2.encode()) and AuditEvent.objects.get(seq=6).key_id == change.key_id
    assert verify_chain().ok
    settings.AUDIT_CHAIN_KEY = KEY_2  # the retired key dropped from the ring: its events can no longer be vouched for
    result = verify_chain()
    assert (result.ok, result.seq) == (False, 1) and "not in the chain key ring" in result.problem


@pytest.mark.parametrize("leaked", [KEY_1, WRONG], ids=["a-key-the-chain-left", "an-earlier-key-of-the-ring"])
def test_a_leaked_retired_key_cannot_link_new_events(db, settings, leaked):
    """Retired keys stay in the ring so their events verify. Whoever holds one (leaked) records a key
    change back to it and appends forged events with it: verification refuses the first of them,
    whether the chain used that key before or not (key ids only move forward in ring order)."""
    settings.AUDIT_CHAIN_KEY = f"{WRONG},{KEY_1}"
    record_events(3)
    settings.AUDIT_CHAIN_KEY = f"{WRONG},{KEY_1},{KEY_2}"
    record_events(2, start=3)  # #4 is the key change to KEY_2
    append_forged(leaked, change_back(leaked, KEY_2), {"operation": "storage.delete", "app": "storage", "target": "evidence"})
    result = verify_chain()
    assert (result.ok, result.seq, result.checked) == (False, 7, 6)
    assert (
        f"event #7 is linked with key {key_id(leaked.encode())} after the chain moved on to key {key_id(KEY_2.encode())}" in result.problem
    )


def test_once_the_new_key_is_anchored_a_retired_key_cannot_rewrite_from_the_key_change(db, settings):
    """The holder of the retired key cuts the log back to before the key change and appends forged
    events with the retired key (no key change in them): the anchor of the new key's head catches it."""
    record_events(3)
    settings.AUDIT_CHAIN_KEY = f"{KEY_1},{KEY_2}"
    record_events(1, start=3)  # #4 the key change, #5
    call_command("audit_anchor")
    raw("DELETE FROM audit_auditevent WHERE seq >= 4")
    append_forged(KEY_1, *({"operation": "storage.delete", "app": "storage", "target": f"forged{i}"} for i in range(3)))
    result = verify_chain()
    assert (result.ok, result.seq) == (False, 5) and "differs from the anchor" in result.problem


def test_a_process_on_an_older_key_ring_never_links_with_its_retired_key(db, settings):
    """A process not restarted since the rotation still has the old ring: its key is retired. The
    database refuses its key change back, whichever process writes; the chain stays intact."""
    record_events(3)
    settings.AUDIT_CHAIN_KEY = f"{KEY_1},{KEY_2}"
    record_events(2, start=3)
    settings.AUDIT_CHAIN_KEY = KEY_1  # the stale process
    with pytest.raises(DatabaseError, match="a key change back to a retired audit chain key is refused"), transaction.atomic():
        record_events(1, start=5)
    assert AuditEvent.objects.count() == 6 and AuditEvent.objects.exclude(key_id=key_id(KEY_1.encode())).count() == 3
    settings.AUDIT_CHAIN_KEY = f"{KEY_1},{KEY_2}"  # restarted with the current ring
    record_events(1, start=5)
    assert verify_chain().ok


def test_the_retired_key_guard_runs_on_key_change_events_only(db):
    """Its trigger is conditioned on the operation, so an ordinary append never runs its function."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = 'audit_key_forward'")
        else:
            cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'audit_key_forward'")
        (definition,) = cursor.fetchone()
    assert "BEFORE INSERT ON" in definition and "WHEN" in definition and f"'{KEY_CHANGE}'" in definition


def test_legacy_rows_verify_as_before_and_the_switch_over_is_an_event(db):
    prev = GENESIS
    for seq in (1, 2, 3):
        event = AuditEvent(seq=seq, channel="system", operation="old.op", app="old", outcome="ok", duration_ms=1.5, prev_hash=prev)
        event.at = AuditEvent._meta.get_field("at").to_python("2026-01-01T00:00:00Z")
        event.hash = prev = legacy_hash(prev, event)
        event.save()
    record_events(2)
    switch = AuditEvent.objects.get(seq=4)
    assert switch.operation == KEY_CHANGE and switch.params == {"from": "sha256", "to": key_id(KEY_1.encode())}
    assert verify_chain().ok
    raw("UPDATE audit_auditevent SET outcome = 'failed' WHERE seq = 2")
    assert (verify_chain().ok, verify_chain().seq) == (False, 2)


def test_downgrading_the_whole_chain_to_sha256_is_caught_by_the_anchor(db):
    record_events(6)
    write_anchor()
    rewrite_from(1, legacy_hash, as_key="")  # every row: no keyed event left for the walk to object to
    result = verify_chain()
    assert not result.ok and "differs from the anchor" in result.problem


def test_the_key_is_not_in_the_database(db):
    record_events(3)
    assert hmac.compare_digest(key_id(KEY_1.encode()), AuditEvent.objects.get(seq=1).key_id)  # only its public name
    with connection.cursor() as cursor:  # every row of every table, as the insider reads them
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            dumped = "\n".join(str(row) for row in cursor.fetchall())
            assert KEY_1 not in dumped and hashlib.sha256(KEY_1.encode()).hexdigest()[:16] not in dumped, table


def test_embedded_default_creates_private_key_files_once(settings, tmp_path):
    from apps.audit import keys

    settings.AUDIT_CHAIN_KEY, settings.AUDIT_CHAIN_KEY_FILE = "", str(tmp_path / "chain.key")
    settings.AUDIT_SIGNING_KEY_FILE = str(tmp_path / "signing.pem")
    current, signer = keys.current_chain_key(), keys.public_pem()
    for name in ("chain.key", "signing.pem"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "chain.key").read_text().strip().encode() == current[1] and len(current[1]) == 64
    keys._ring.cache_clear(), keys._signing_key.cache_clear()
    assert (keys.current_chain_key(), keys.public_pem()) == (current, signer)  # read back, not made anew


def test_the_event_page_names_the_key_that_links_it(client_as):
    (event,) = record_events(1)
    page = client_as("auditor").get(f"/audit/{event.seq}/").content.decode()
    assert f"HMAC-SHA256, key {key_id(KEY_1.encode())}" in page
