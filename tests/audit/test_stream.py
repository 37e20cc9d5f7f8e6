"""SIEM streaming against a real rsyslogd and a local HTTPS receiver: every event
arrives, in order, in the sink's format; a sink that goes down misses nothing once
it is back (duplicates only as at-least-once allows), and its lag shows on
/health/ and /metrics meanwhile."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent, AuditSink
from apps.audit.stream import drain_all
from apps.audit.writer import record
from apps.core.gateway import invoke
from tests.support.waiting import wait_for

from .siem import HttpsReceiver, Rsyslog, in_order_at_least_once

LOOPBACK = ["127.0.0.0/8", "::1/128"]


@pytest.fixture
def streaming(settings):
    settings.AUDIT_SINK_OUTBOUND_ALLOW = LOOPBACK  # only loopback: the outbound guard refuses other internal addresses
    settings.AUDIT_STREAM_RETRY_SECONDS = 0
    settings.AUDIT_STREAM_ATTEMPTS = 2


@pytest.fixture
def admin(make_user, actor_of):
    return actor_of(make_user("admin"))


@pytest.fixture
def rsyslog():
    server = Rsyslog()
    server.start()
    yield server
    if server.proc.proc.poll() is None:
        server.stop()


@pytest.fixture
def https_receiver():
    receiver = HttpsReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


def activity(admin, n: int) -> None:
    """n audited gateway calls and one login, as real traffic would leave."""
    for _ in range(n):
        invoke("audit.sinks", admin, {})
    record(operation="accounts.login", outcome="ok", channel="web", actor=admin, client_ip="127.0.0.1")


def expected_seqs(sink_start: int) -> list[int]:
    return list(AuditEvent.objects.filter(seq__gt=sink_start).order_by("seq").values_list("seq", flat=True))


def outage(server, admin, sink_name: str) -> None:
    """The sink goes down while events keep coming: nothing moves, the failure is recorded, lag shows."""
    server.stop()
    activity(admin, 3)
    assert drain_all()[sink_name] == 0
    sink = AuditSink.objects.get(name=sink_name)
    assert sink.failures == 1 and sink.last_error and sink.retry_at
    health = invoke("core.health", admin, {"include_workers": False}).result
    check = next(c for c in health.checks if c.name.endswith(sink_name))
    assert check.status == "warning" and "4 event(s)" in check.detail
    assert health.status == "degraded"
    info = next(s for s in invoke("audit.sinks", admin, {}).result.sinks if s.name == sink_name)
    assert info.lag_events >= 4 and info.lag_seconds >= 0
    # Backing off: a run before retry_at does not even try.
    assert drain_all()[sink_name] == 0 and AuditSink.objects.get(name=sink_name).failures == 1


def test_syslog_sink_on_rsyslog_survives_an_outage(streaming, admin, rsyslog):
    saved = invoke("audit.save_sink", admin, {"name": "siem", "kind": "syslog", "address": f"127.0.0.1:{rsyslog.port}", "tls": False})
    assert saved.status == "ok"  # adding a sink is immediate
    start = saved.result.cursor
    activity(admin, 5)
    assert drain_all()["siem"] == len(expected_seqs(start))
    wait_for(lambda: len(rsyslog.lines()) >= len(expected_seqs(start)), what="rsyslog to write the first events")

    outage(rsyslog, admin, "siem")
    rsyslog.start()
    activity(admin, 2)
    retry_at = AuditSink.objects.get(name="siem").retry_at
    drain_all(now=retry_at + timedelta(seconds=1))
    wanted = expected_seqs(start)
    wait_for(lambda: set(rsyslog.seqs()) >= set(wanted), what="every event in rsyslog's file")
    assert in_order_at_least_once(rsyslog.seqs()) == wanted
    sink = AuditSink.objects.get(name="siem")
    assert sink.cursor == wanted[-1] and sink.failures == 0 and not sink.last_error

    # RFC 5424 with OCSF: an operation is API Activity (6003), a login is Authentication (3002).
    by_seq = {int(json.loads(line.split("] ", 1)[1])["metadata"]["sequence"]): line for line in rsyslog.lines()}
    login = AuditEvent.objects.filter(seq__gt=start, operation="accounts.login").first()
    call = AuditEvent.objects.filter(seq__gt=start, operation="audit.sinks").first()
    assert by_seq[login.seq].startswith("<110>1 ")  # facility 13 (log audit) * 8 + informational
    assert json.loads(by_seq[login.seq].split("] ", 1)[1])["class_uid"] == 3002
    ocsf = json.loads(by_seq[call.seq].split("] ", 1)[1])
    assert (ocsf["class_uid"], ocsf["activity_id"], ocsf["api"]["operation"]) == (6003, 2, "audit.sinks")
    assert ocsf["metadata"]["correlation_uid"] == call.correlation_id and ocsf["actor"]["user"]["name"] == admin.name


def test_syslog_over_tls_verifies_the_server(streaming, admin):
    server = Rsyslog(tls=True)
    server.start()
    try:
        untrusted = invoke("audit.save_sink", admin, {"name": "untrusted", "kind": "syslog", "address": f"localhost:{server.port}"})
        trusted = invoke("audit.save_sink", admin, {"name": "tls", "kind": "syslog", "address": f"localhost:{server.port}",
                                                    "format": "cef", "ca_pem": server.cert_pem.decode()})  # fmt: skip
        activity(admin, 2)
        delivered = drain_all()
        assert delivered["untrusted"] == 0 and "certificate verify failed" in AuditSink.objects.get(name="untrusted").last_error
        wanted = expected_seqs(trusted.result.cursor)
        assert delivered["tls"] == len(wanted) and untrusted.result.cursor < trusted.result.cursor
        wait_for(lambda: len(server.lines()) >= len(wanted), what="rsyslog to write what came over TLS")
        assert server.seqs() == wanted and all("CEF:0|opsconsole|" in line for line in server.lines())
    finally:
        server.stop()


def test_https_sink_in_cef_survives_an_outage(streaming, admin, https_receiver):
    address = f"https://localhost:{https_receiver.port}/ingest"
    params = {"name": "lake", "kind": "https", "address": address, "format": "cef",
              "ca_pem": https_receiver.cert_pem.decode(), "token": "s3cr3t-bearer-value"}  # fmt: skip
    saved = invoke("audit.save_sink", admin, params)
    assert saved.status == "ok" and saved.result.has_token
    start = saved.result.cursor
    activity(admin, 4)
    drain_all()
    assert https_receiver.seqs("cef") == expected_seqs(start)

    outage(https_receiver, admin, "lake")
    https_receiver.start()
    drain_all(now=AuditSink.objects.get(name="lake").retry_at + timedelta(seconds=1))
    wanted = expected_seqs(start)
    assert in_order_at_least_once(https_receiver.seqs("cef")) == wanted
    assert all(r["authorization"] == "Bearer s3cr3t-bearer-value" for r in https_receiver.records)
    cef = json.loads(https_receiver.lines()[0])
    assert cef.startswith("CEF:0|opsconsole|Ops console|1|audit.save_sink|") and f"externalId={wanted[0]}" in cef

    # The token is write-only: never in the audit log, the operation's output or the stream.
    assert not AuditEvent.objects.filter(params__icontains="s3cr3t").exists()
    assert "s3cr3t" not in json.dumps([r["line"] for r in https_receiver.records])
    assert "s3cr3t" not in invoke("audit.sinks", admin, {}).result.model_dump_json()


def test_lag_on_metrics_and_the_health_page(streaming, admin, client, rsyslog):
    invoke("audit.save_sink", admin, {"name": "metered", "kind": "syslog", "address": f"127.0.0.1:{rsyslog.port}", "tls": False})
    activity(admin, 2)
    body = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    assert 'opsconsole_audit_stream_lag_events{sink="metered"} 4.0' in body
    assert 'opsconsole_audit_stream_lag_seconds{sink="metered"}' in body
    client.force_login(admin.user)
    health_page = client.get("/health/").content.decode()
    assert "audit stream → metered" in health_page and "5 event(s)" in health_page  # + the login
    drain_all()
    body = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    assert 'opsconsole_audit_stream_lag_events{sink="metered"} 0.0' in body


def test_a_down_sink_is_not_tried_in_the_request(streaming, admin, rsyslog, django_capture_on_commit_callbacks):
    """The writer only schedules a kick after commit; delivery happens on a worker."""
    invoke("audit.save_sink", admin, {"name": "down", "kind": "syslog", "address": f"127.0.0.1:{rsyslog.port}", "tls": False})
    rsyslog.stop()
    with django_capture_on_commit_callbacks() as callbacks:
        invoke("audit.sinks", admin, {})
    assert callbacks  # the kick, run after commit ...
    sink = AuditSink.objects.get(name="down")
    assert sink.failures == 0 and sink.retry_at is None  # ... and the call itself never touched the sink


def test_delivery_resumes_from_the_cursor_after_a_lost_cursor_move(streaming, admin, rsyslog):
    """At-least-once: if the cursor move is lost after a delivery, the batch is sent again, never skipped."""
    saved = invoke("audit.save_sink", admin, {"name": "again", "kind": "syslog", "address": f"127.0.0.1:{rsyslog.port}", "tls": False})
    activity(admin, 2)
    drain_all()
    wanted = expected_seqs(saved.result.cursor)
    AuditSink.objects.filter(name="again").update(cursor=saved.result.cursor)  # as if the move never committed
    drain_all()
    wait_for(lambda: len(rsyslog.seqs()) >= 2 * len(wanted), what="the re-sent batch")
    assert in_order_at_least_once(rsyslog.seqs()) == wanted
    assert timezone.now() >= AuditSink.objects.get(name="again").delivered_at


@pytest.mark.django_db(transaction=True)
def test_a_worker_streams_what_was_just_written(admin, rsyslog, celery_worker, settings):
    """Nobody calls the drain here: the writer's kick after commit reaches a real Celery worker."""
    settings.AUDIT_STREAM_KICK_SECONDS = 0  # every write kicks (the default throttles to one a second)
    saved = invoke("audit.save_sink", admin, {"name": "live", "kind": "syslog", "address": f"127.0.0.1:{rsyslog.port}", "tls": False})
    activity(admin, 3)
    wanted = expected_seqs(saved.result.cursor)
    wait_for(lambda: set(rsyslog.seqs()) >= set(wanted), timeout=120, what=f"the worker to stream\n{celery_worker.tail()}")
    assert in_order_at_least_once(rsyslog.seqs()) == wanted


def test_anchors_reach_the_sinks_signed_and_once_per_new_head(streaming, admin, https_receiver):
    from apps.audit.anchors import is_authentic, write_anchor

    address = f"https://localhost:{https_receiver.port}/ingest"
    params = {"name": "lake", "kind": "https", "address": address, "format": "ocsf", "ca_pem": https_receiver.cert_pem.decode()}
    assert invoke("audit.save_sink", admin, params).status == "ok"
    activity(admin, 2)
    entry = write_anchor()
    write_anchor()  # nothing new since: no second anchor event
    anchors = list(AuditEvent.objects.filter(operation="audit.anchor"))
    assert len(anchors) == 1 and anchors[0].params["seq"] == entry["anchor"]["seq"] == anchors[0].seq - 1
    assert is_authentic({"anchor": entry["anchor"], "signature": anchors[0].params["signature"]})
    drain_all()
    assert anchors[0].seq in https_receiver.seqs("ocsf")
