"""The audit appender process (PostgreSQL): writer processes hand it their events and get them
back numbered only once durable; a writer that cannot reach it, or loses it mid-way (killed
before or after its commit, stopped past the timeout), still has its event in the chain exactly
once, and the chain verifies."""

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from django.db import close_old_connections, connection

from apps.audit import appender, appender_client, writer
from apps.audit.appender_client import receive_frame, send_event
from apps.audit.models import AuditEvent
from apps.audit.verify import verify_chain
from tests.support.processes import Process, console_env
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def postgresql_only(settings, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the appender serves PostgreSQL (SQLite appends in the caller's transaction)")
    settings.AUDIT_CHECKPOINT_PATH = str(tmp_path / "anchors.jsonl")


@pytest.fixture
def socket_path(tmp_path, settings):
    path = str(tmp_path / "appender.sock")
    settings.AUDIT_APPENDER_SOCKET = path
    return path


@pytest.fixture
def server(socket_path):
    """An appender in this process (a thread), for the tests that watch or break it at a chosen point."""
    with serving(socket_path) as server:
        yield server


@contextlib.contextmanager
def serving(path: str):
    server = appender.AppenderServer(path)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(timeout=60)  # the loop closes its database connection as it ends
        server.server_close()


@pytest.fixture
def other_session():
    db = connection.settings_dict
    server = {"host": db["HOST"] or "127.0.0.1", "port": db["PORT"] or 5432, "user": db["USER"]}
    with psycopg.connect(dbname=db["NAME"], autocommit=True, **server) as conn:
        yield conn


@pytest.fixture(autouse=True)
def fresh_client(monkeypatch):
    """Each test starts with no connection to an appender and no back-off from an earlier one."""
    monkeypatch.setattr(writer, "_appender", writer.AppenderClient(writer._append_unless_appended))


def append(i=0):
    try:
        return writer.record(operation="test.appender", outcome="ok", channel="system", target=f"t{i}")
    finally:
        close_old_connections()


def count(session) -> int:
    return session.execute("SELECT count(*) FROM audit_auditevent WHERE operation = 'test.appender'").fetchone()[0]


APPEND_FROM_A_PROCESS = """
from apps.audit.writer import record
for i in range({count}):
    record(operation="test.appender", outcome="ok", channel="system", target="{name}-%d" % i)
print("appended")
"""


def test_writer_processes_append_through_the_appender_process(socket_path):
    env = console_env(AUDIT_APPENDER_SOCKET=socket_path)
    server = Process("appender", [sys.executable, "manage.py", "audit_appender"], env=env)
    writers, each = 4, 15
    procs = []
    try:
        server.wait_until(lambda: os.path.exists(socket_path), timeout=120, what="its socket")
        argv = [sys.executable, "manage.py", "shell", "-c"]
        procs = [Process(f"writer{n}", [*argv, APPEND_FROM_A_PROCESS.format(count=each, name=f"w{n}")], env=env) for n in range(writers)]
        for proc in procs:
            wait_for(lambda proc=proc: proc.proc.poll() is not None, timeout=180, what=f"{proc.name} to finish")
            assert proc.proc.returncode == 0 and "appended" in proc.output(), proc.tail()
            assert "appending in this process" not in proc.output()  # none fell back
    finally:
        for proc in [*procs, server]:
            proc.stop()
    events = AuditEvent.objects.filter(operation="test.appender")
    assert sorted(events.values_list("target", flat=True)) == sorted(f"w{n}-{i}" for n in range(writers) for i in range(each))
    assert not events.filter(append_key="").exists()  # every one went through the appender
    assert sorted(AuditEvent.objects.values_list("seq", flat=True)) == list(range(1, writers * each + 1))
    assert verify_chain().ok
    assert not os.path.exists(socket_path)  # a clean stop removes its socket


def test_writers_on_threads_of_their_own_share_the_processs_connection(server, monkeypatch):
    """Under ASGI each page's sync code runs on a thread of its own: a connection kept per thread was opened,
    accepted and dropped for every page. Five writers, each on a new thread after the last ended: one connection."""
    accepted = []
    real_accept = appender.AppenderServer._accept
    monkeypatch.setattr(appender.AppenderServer, "_accept", lambda self: (accepted.append(1), real_accept(self)))
    events = []
    for i in range(5):
        thread = threading.Thread(target=lambda i=i: events.append(append(i)))
        thread.start()
        thread.join(timeout=60)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5] and all(e.append_key for e in events)
    assert len(accepted) == 1 and len(server._buffers) == 1
    assert verify_chain().ok


def test_connections_opened_before_the_appender_was_lost_are_not_used_after(socket_path, settings, caplog):
    """Two idle connections, then the appender restarts (a new one on the same socket): the first append
    finds its connection lost (the writer appends it itself) and the other, just as dead, is dropped with it:
    the next append connects afresh instead of losing a second event's round trip and a second back-off."""
    settings.AUDIT_APPENDER_RETRY_SECONDS = 0
    client = writer._appender
    with serving(socket_path) as first_server:
        idle = [client._connection(), client._connection()]
        wait_for(lambda: len(first_server._buffers) == 2, timeout=60, what="both connections accepted")
    for conn in idle:
        client._idle.give(conn)
    with serving(socket_path), caplog.at_level("WARNING", logger="apps.audit.appender_client"):
        first, second = append(1), append(2)
    lost = [r for r in caplog.records if "appending in this process" in r.getMessage()]
    assert len(lost) == 1 and [first.seq, second.seq] == [1, 2] and second.append_key
    assert AuditEvent.objects.filter(operation="test.appender").count() == 2 and verify_chain().ok


def test_an_event_is_answered_only_once_committed(server, other_session):
    append(0)  # connect; the appender now knows the head
    holder = other_session.transaction()
    holder.__enter__()
    other_session.execute("SELECT pg_advisory_xact_lock(%s)", [writer.CHAIN_LOCK_ID])
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(append, i) for i in range(1, 5)]
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        wait_for(lambda: other_session.execute(waiting).fetchone()[0] > 0, timeout=60, what="the appender waiting for the chain lock")
        assert not any(f.done() for f in futures) and count(other_session) == 1
        holder.__exit__(None, None, None)
        events = [f.result(timeout=60) for f in futures]
    assert count(other_session) == 5  # answered means committed: another session sees every row
    assert sorted(e.seq for e in events) == [2, 3, 4, 5] and all(e.append_key and e.pk for e in events)
    assert verify_chain().ok


def test_events_sent_while_a_batch_commits_are_the_next_batch(server, other_session, monkeypatch):
    sent = []
    real_receive = appender_client.receive_frame

    def receive_after_sending(stream):
        sent.append(1)
        return real_receive(stream)

    monkeypatch.setattr(appender_client, "receive_frame", receive_after_sending)
    append(0)
    holder = other_session.transaction()
    holder.__enter__()
    other_session.execute("SELECT pg_advisory_xact_lock(%s)", [writer.CHAIN_LOCK_ID])
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(append, 1)
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        wait_for(
            lambda: other_session.execute(waiting).fetchone()[0] > 0, timeout=60, what="the appender's batch waiting for the chain lock"
        )
        rest = [pool.submit(append, i) for i in range(2, 5)]
        wait_for(lambda: len(sent) == 5, timeout=60, what="the other three events sent")
        holder.__exit__(None, None, None)
        events = [f.result(timeout=60) for f in [first, *rest]]
    assert [e.seq for e in events[:1]] == [2] and sorted(e.seq for e in events[1:]) == [3, 4, 5]
    assert len({e.at for e in events[1:]}) == 1 and events[0].at < events[1].at  # one batch, after the first
    assert verify_chain().ok


def test_an_append_committed_but_not_answered_is_recovered_by_its_writer_once(server, monkeypatch):
    def commit_then_fail(rows):
        real_append(rows)
        raise OSError("the connection was lost after the commit")

    real_append = appender._append_pipelined
    monkeypatch.setattr(appender, "_append_pipelined", commit_then_fail)
    event = append(0)
    assert append(1).seq == 2  # the writer went on appending itself for a while
    rows = AuditEvent.objects.filter(operation="test.appender")
    assert rows.count() == 2 and rows.get(seq=1).append_key == event.append_key and event.seq == 1
    assert verify_chain().ok


def test_no_appender_listening_the_writer_appends_itself(socket_path):
    event = append()
    assert event.seq == 1 and event.append_key == "" and verify_chain().ok


def test_appender_dies_after_committing_the_event_is_not_appended_twice(server, monkeypatch):
    monkeypatch.setattr(appender, "_answer", lambda sock, message: sock.shutdown(socket.SHUT_RDWR))
    event = append()
    rows = AuditEvent.objects.filter(operation="test.appender")
    assert rows.count() == 1 and rows.get().append_key == event.append_key and rows.get().seq == event.seq
    assert verify_chain().ok


def test_appender_dies_before_appending_the_writer_appends_it(server, monkeypatch):
    def die_on_receipt(self, sock, *sent):
        sock.shutdown(socket.SHUT_RDWR)
        raise KeyError("killed")

    monkeypatch.setattr(appender.AppenderServer, "_take", die_on_receipt)
    event = append()
    assert AuditEvent.objects.get(operation="test.appender").seq == event.seq == 1
    assert verify_chain().ok


def test_a_stopped_appender_costs_one_timeout_and_never_appends_what_the_writer_took_back(socket_path, settings, other_session):
    settings.AUDIT_APPENDER_TIMEOUT = 2
    settings.AUDIT_APPENDER_RETRY_SECONDS = 3600
    env = console_env(AUDIT_APPENDER_SOCKET=socket_path)
    server = Process("appender", [sys.executable, "manage.py", "audit_appender"], env=env)
    try:
        server.wait_until(lambda: os.path.exists(socket_path), timeout=120, what="its socket")
        append(0)
        os.kill(server.proc.pid, signal.SIGSTOP)
        late = append(1)  # the appender does not answer: after the timeout the writer appends it
        assert late.seq == 2 and count(other_session) == 2
        assert writer._appender._connection() is None  # skipped for a while: the next call does not wait
        os.kill(server.proc.pid, signal.SIGCONT)
        server.wait_until(lambda: "writer stopped waiting" in server.output(), timeout=120, what="the appender to drop the late event")
    finally:
        server.stop()
    assert count(other_session) == 2 and verify_chain().ok


def test_the_same_append_key_cannot_enter_the_chain_twice(server, socket_path):
    first = append()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(socket_path)
        send_event(sock, first, time.time() + 600)
        reply = receive_frame(sock.makefile("rb"))
    assert "audit_append_key_once" in reply["error"]
    assert AuditEvent.objects.filter(operation="test.appender").count() == 1
    assert append(1).seq == 2 and verify_chain().ok


def test_the_health_page_says_when_nothing_listens_on_the_appender_socket(socket_path, settings):
    from apps.audit.metrics import health_checks

    assert health_checks()[0][:2] == ("audit appender", "warning")
    settings.AUDIT_APPENDER_SOCKET = ""  # no appender configured: no row
    assert not [row for row in health_checks() if row[0] == "audit appender"]


def test_the_health_page_says_the_appender_listens(server, socket_path):
    from apps.audit.metrics import health_checks

    assert health_checks()[0] == ("audit appender", "ok", f"listening on {socket_path}")


def test_what_a_writer_sent_is_stored_as_it_was_linked_whatever_its_text(server):
    awkward = {"quote": 'say "hi"\\', "unicode": "café ☃ 𝄞", "nested": {"list": [1, 2.5, None, True], "empty": {}}, "newline": "a\nb"}
    append(0)  # the appender's first batch links after a head it read; the next ones after its own
    events = [writer.record(operation="test.appender", outcome="ok", channel="mcp", params=awkward, target=f"t{i}", duration_ms=1.23456,
                            client_ip="2001:db8::1", actor_name="agent ☃") for i in range(3)]  # fmt: skip
    close_old_connections()
    stored = AuditEvent.objects.filter(operation="test.appender", channel="mcp").order_by("seq")
    assert [(e.pk, e.seq, e.hash) for e in stored] == [(e.pk, e.seq, e.hash) for e in events]
    assert all(e.params == awkward and e.duration_ms == 1.235 and e.client_ip == "2001:db8::1" and e.actor == "agent ☃" for e in stored)
    assert all(e.append_key for e in stored) and verify_chain().ok


@pytest.mark.parametrize(
    "sent",
    [
        b"not json",
        b"[1, 2]",
        b'{"operation": "test.forged"}',  # fields missing
        "extra",  # an event's fields and one it may not set: its own hash
    ],
)
def test_a_frame_that_is_not_an_event_drops_its_connection_and_changes_nothing(server, socket_path, sent):
    append(0)
    if sent == "extra":
        forged = AuditEvent(operation="test.forged", app="test", channel="system", outcome="ok", append_key="k" * 32)
        values = {name: value for name, value in appender_client.row_values(forged).items() if name in appender_client.SENT}
        sent = json.dumps({**values, "hash": "0" * 64}).encode()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(socket_path)
        sock.sendall(appender_client.EVENT.pack(len(sent), time.time() + 600) + sent)
        assert sock.makefile("rb").read() == b""  # closed, no answer
    assert append(1).seq == 2  # the appender still serves everyone else
    assert not AuditEvent.objects.filter(operation="test.forged").exists() and verify_chain().ok
