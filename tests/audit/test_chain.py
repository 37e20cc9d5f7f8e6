"""The audit log is append-only and hash-chained; audit_verify finds tampering."""

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from apps.audit.anchors import write_anchor
from apps.audit.models import AppendOnlyError, AuditEvent
from apps.audit.verify import verify_chain
from apps.audit.writer import record


@pytest.fixture(autouse=True)
def checkpoint_file(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_PATH = str(tmp_path / "checkpoints.jsonl")


@pytest.fixture
def events(db):
    return [record(operation="test.op", outcome="ok", channel="system", target=f"t{i}", params={"i": i, "é": "ü"}) for i in range(10)]


def raw(sql, params=()):
    """An edit behind the application's back; on PostgreSQL the attacker must
    first disable the append-only trigger (a privilege the app does not use)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_no_update_delete")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_no_update_delete")


def test_intact_chain_verifies(events, capsys):
    assert verify_chain().ok
    call_command("audit_verify")
    assert "10 events verified" in capsys.readouterr().out


def test_raw_sql_edit_is_detected(events):
    raw("UPDATE audit_auditevent SET outcome = 'denied' WHERE seq = 4")
    result = verify_chain()
    assert (result.ok, result.seq, result.checked) == (False, 4, 3)
    assert "altered" in result.problem
    with pytest.raises(CommandError, match="event #4 was altered"):
        call_command("audit_verify")


def test_raw_sql_delete_is_detected(events):
    raw("DELETE FROM audit_auditevent WHERE seq = 6")
    result = verify_chain()
    assert (result.ok, result.seq) == (False, 6)
    assert "missing" in result.problem


def test_cut_off_tail_is_detected_by_the_anchor(events):
    write_anchor()
    raw("DELETE FROM audit_auditevent WHERE seq >= 9")
    result = verify_chain()
    assert not result.ok and "newest events were removed" in result.problem


def test_orm_refuses_update_and_delete(events):
    event = AuditEvent.objects.get(seq=1)
    event.outcome = "failed"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(seq=1).update(outcome="failed")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    assert verify_chain().ok


def test_postgresql_trigger_refuses_raw_update_and_delete(events):
    if connection.vendor != "postgresql":
        pytest.skip("the trigger exists on PostgreSQL only (SQLite relies on the ORM and the chain)")
    for sql in ("UPDATE audit_auditevent SET outcome = 'x' WHERE seq = 1", "DELETE FROM audit_auditevent WHERE seq = 1"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_a_gapless_chain():
    from concurrent.futures import ThreadPoolExecutor

    from django.db import close_old_connections

    def write(n):
        try:
            for i in range(25):
                record(operation="test.concurrent", outcome="ok", channel="system", target=f"{n}-{i}")
        finally:
            close_old_connections()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(8)))
    assert AuditEvent.objects.count() == 200
    assert verify_chain().ok
