"""Group commit on PostgreSQL: concurrent appenders of one process share one batch
(one chain-lock hold, one commit), and none returns before its event is committed."""

from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from django.db import close_old_connections, connection

from apps.audit import writer
from apps.audit.models import AuditEvent
from apps.audit.verify import verify_chain
from tests.monitoring.peers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def anchor_file(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_PATH = str(tmp_path / "anchors.jsonl")


@pytest.fixture
def other_session():
    if connection.vendor != "postgresql":
        pytest.skip("group commit is the PostgreSQL path (SQLite appends in the caller's transaction)")
    db = connection.settings_dict
    with psycopg.connect(
        dbname=db["NAME"], host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], autocommit=True
    ) as conn:
        yield conn


def append(i):
    try:
        return writer.record(operation="test.group", outcome="ok", channel="system", target=f"t{i}")
    finally:
        close_old_connections()


def test_queued_appenders_are_written_as_one_batch_after_the_lock_is_free(other_session):
    holder = other_session.transaction()
    holder.__enter__()
    other_session.execute("SELECT pg_advisory_xact_lock(%s)", [writer.CHAIN_LOCK_ID])
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(append, i) for i in range(8)]
        # The first appender leads a batch of one and waits for the lock; the seven others queue behind it.
        wait_for(lambda: len(writer._group._queue) == 7, timeout=60, what="seven queued appenders")
        assert not any(f.done() for f in futures)
        assert other_session.execute("SELECT count(*) FROM audit_auditevent").fetchone() == (0,)
        holder.__exit__(None, None, None)
        events = [f.result(timeout=60) for f in futures]
    # Returned means committed: another session sees every row.
    assert other_session.execute("SELECT count(*) FROM audit_auditevent").fetchone() == (8,)
    assert sorted(e.seq for e in events) == list(range(1, 9))
    assert len({e.at for e in events}) == 2  # two batches: the leader's one event, then the seven queued
    assert AuditEvent.objects.filter(operation="test.group").count() == 8 and verify_chain().ok


def test_a_failed_batch_fails_every_caller_in_it_and_the_next_append_works(other_session, monkeypatch):
    def broken_insert(cursor, events):
        cursor.execute("SELECT 1/0")

    monkeypatch.setattr(writer, "_insert", broken_insert)
    with pytest.raises(Exception, match="division by zero"):
        append(0)
    monkeypatch.undo()
    assert append(1).seq == 1 and verify_chain().ok


def test_an_append_outside_a_transaction_is_two_round_trips(other_session):
    from tests.support.roundtrips import counting

    append(0)  # connect
    with counting() as trips:
        append(1)
    assert trips.sql == 2, trips.sql  # (BEGIN, lock, head), then (INSERT, COMMIT, durability barrier)


APPEND_FROM_A_PROCESS = """
from apps.audit.writer import record
for i in range({count}):
    record(operation="test.processes", outcome="ok", channel="system", target="{name}-%d" % i)
print("appended")
"""


def test_appenders_in_several_processes_leave_one_gapless_intact_chain():
    """Separate writer processes (as web and worker processes are) share one chain: every
    caller's event is in it exactly once, numbered without a gap, and the chain verifies."""
    import sys

    from tests.support.processes import Process, console_env

    writers, count = 4, 15
    env = console_env()
    argv = [sys.executable, "manage.py", "shell", "-c"]
    procs = [Process(f"writer{n}", [*argv, APPEND_FROM_A_PROCESS.format(count=count, name=f"w{n}")], env=env) for n in range(writers)]
    try:
        for proc in procs:
            wait_for(lambda proc=proc: proc.proc.poll() is not None, timeout=180, what=f"{proc.name} to finish")
            assert proc.proc.returncode == 0 and "appended" in proc.output(), proc.tail()
    finally:
        for proc in procs:
            proc.stop()
    events = AuditEvent.objects.filter(operation="test.processes")
    assert sorted(events.values_list("target", flat=True)) == sorted(f"w{n}-{i}" for n in range(writers) for i in range(count))
    assert sorted(AuditEvent.objects.values_list("seq", flat=True)) == list(range(1, writers * count + 1))
    assert verify_chain().ok
