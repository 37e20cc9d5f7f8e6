"""Sources: unsafe URLs refused, credentials encrypted at rest and never shown,
basic auth (stored, or from the environment) against a real Prometheus that
requires it, a bearer token through a gate in front of one, and the admin page audited."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from apps.audit.models import AuditEvent
from apps.core.gateway import invoke
from apps.core.outbound import OutboundRefused
from apps.monitoring.errors import MonitoringError
from apps.monitoring.models import PrometheusSource
from tests.support import peers as support

from . import peers


def test_loopback_sources_are_allowed_by_default_and_metadata_never(db):
    # The guard's rules are tested in tests/core/test_outbound.py; this is the monitoring policy.
    PrometheusSource(name="local", base_url="http://localhost:9090").full_clean()
    with pytest.raises(ValidationError, match="link-local or cloud metadata"):
        PrometheusSource(name="meta", base_url="http://169.254.169.254/").full_clean()


def test_the_source_form_refuses_a_metadata_url(client_as):
    client = client_as("admin")
    response = client.post(
        "/monitoring/sources/new/",
        {"name": "meta", "base_url": "http://169.254.169.254/", "auth_type": "none", "timeout_seconds": "5", "verify_tls": "on"},
    )
    assert response.status_code == 422
    assert "link-local or cloud metadata" in response.context["form"].errors["base_url"][0]
    assert not PrometheusSource.objects.exists()


def test_a_source_that_became_unsafe_is_refused_at_call_time(db, viewer):
    PrometheusSource.objects.create(name="default", base_url="http://169.254.169.254:9090")
    with pytest.raises(OutboundRefused, match="link-local or cloud metadata"):
        invoke("monitoring.query", viewer, {"query": "up"})


@pytest.fixture(scope="module")
def guarded_prometheus(exporter):
    peer = peers.start_prometheus(
        support.require_binary("prometheus"), {"exporter": {"target": f"127.0.0.1:{exporter.port}"}}, basic_auth=("console", "s3cret-pass")
    )
    peers.wait_for(lambda: peers.http_get(peer.url + "/-/ready")[0] == 401, what="the guarded Prometheus")
    yield peer
    peer.shutdown()


def test_basic_auth_stored_encrypted_and_never_rendered(client_as, guarded_prometheus, actor_of):
    admin = client_as("admin")
    form = {
        "name": "guarded",
        "base_url": guarded_prometheus.url,
        "auth_type": "basic",
        "username": "console",
        "secret": "s3cret-pass",
        "timeout_seconds": "5",
        "verify_tls": "on",
    }
    assert admin.post("/monitoring/sources/new/", form).status_code == 302
    source = PrometheusSource.objects.get(name="guarded")
    assert source.secret == "s3cret-pass"
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM monitoring_prometheussource WHERE name = 'guarded'")
        stored = cursor.fetchone()[0]
    assert "s3cret" not in stored and stored.startswith("gAAAA")  # a Fernet token
    page = admin.get(f"/monitoring/sources/{source.pk}/")
    assert b"s3cret-pass" not in page.content and b"gAAAA" not in page.content
    # Saving without typing it again keeps the stored password.
    assert admin.post(f"/monitoring/sources/{source.pk}/", {**form, "secret": "", "timeout_seconds": "4"}).status_code == 302
    source.refresh_from_db()
    assert source.secret == "s3cret-pass" and source.timeout_seconds == 4
    events = AuditEvent.objects.filter(operation="monitoring.save_source").order_by("seq")
    assert [e.params["data"]["timeout_seconds"] for e in events] == [["5"], ["4"]]
    assert {e.params["data"]["secret"] for e in events} == {"[redacted]"}
    assert "s3cret" not in str([e.params for e in events])

    result = invoke("monitoring.query", actor_of(admin.user), {"source": "guarded", "query": "scalar(vector(7))"}).result
    assert result.series[0].value == 7.0


def test_wrong_credentials_are_a_clear_error_not_a_breaker_failure(db, guarded_prometheus, viewer):
    from apps.core.resilience import breaker_states, forget_breaker

    forget_breaker("prometheus:guarded")
    PrometheusSource.objects.create(name="guarded", base_url=guarded_prometheus.url, auth_type="basic", username="console", secret="wrong")
    for _ in range(6):
        with pytest.raises(MonitoringError, match=r"refused the console's credentials \(HTTP 401\)"):
            invoke("monitoring.query", viewer, {"source": "guarded", "query": "up"})
    assert breaker_states()["prometheus:guarded"] == {"state": "closed", "failures": 0}


def test_credentials_from_the_environment(db, guarded_prometheus, viewer, monkeypatch):
    monkeypatch.setenv("GUARDED_PROM_PASSWORD", "s3cret-pass")
    PrometheusSource.objects.create(
        name="guarded", base_url=guarded_prometheus.url, auth_type="basic", username="console", secret_env="GUARDED_PROM_PASSWORD"
    )
    assert invoke("monitoring.query", viewer, {"source": "guarded", "query": "vector(1)"}).result.series[0].value == 1.0


def test_only_admins_manage_sources(client_as):
    assert client_as("operator").get("/monitoring/sources/").status_code == 403


class BearerGate(peers.Gate):
    """Prometheus itself only knows basic auth: a proxy in front of it lets a request through with the right token."""

    token = ""
    seen: list[str] = []
    encodings: list[str] = []

    def admit(self) -> bool:
        type(self).seen.append(self.headers.get("Authorization", ""))
        type(self).encodings.append(self.headers.get("Accept-Encoding", ""))
        if self.headers.get("Authorization") == f"Bearer {self.token}":
            return True
        self.send_response(401)
        self.send_header("WWW-Authenticate", "Bearer")
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False


@pytest.fixture
def bearer_prometheus(prometheus):
    BearerGate.token, BearerGate.upstream, BearerGate.seen, BearerGate.encodings = "tok-" + "x" * 20, prometheus.url, [], []
    url, server = peers.serve_gate(BearerGate)
    yield url
    server.shutdown()


def test_bearer_token_auth(db, bearer_prometheus, viewer):
    from apps.core.resilience import forget_breaker

    forget_breaker("prometheus:gated")
    source = PrometheusSource.objects.create(name="gated", base_url=bearer_prometheus, auth_type="bearer", secret=BearerGate.token)
    assert invoke("monitoring.query", viewer, {"source": "gated", "query": "vector(3)"}).result.series[0].value == 3.0
    assert BearerGate.seen[-1] == f"Bearer {BearerGate.token}"
    source.secret = "wrong"
    source.save()
    with pytest.raises(MonitoringError, match=r"refused the console's credentials \(HTTP 401\)"):
        invoke("monitoring.query", viewer, {"source": "gated", "query": "vector(3)"})
    assert BearerGate.token not in str(list(AuditEvent.objects.values_list("params", flat=True)))


def test_queries_ask_for_uncompressed_answers(db, bearer_prometheus, viewer):
    """gzip costs Prometheus more CPU than a dashboard panel's query itself (docs/monitoring.md)."""
    from apps.core.resilience import forget_breaker

    forget_breaker("prometheus:gated")
    PrometheusSource.objects.create(name="gated", base_url=bearer_prometheus, auth_type="bearer", secret=BearerGate.token)
    assert invoke("monitoring.query", viewer, {"source": "gated", "query": "vector(3)"}).result.series[0].value == 3.0
    assert BearerGate.encodings == ["identity"]
    from apps.monitoring.transport import _peers

    assert _peers and not any(BearerGate.token in repr(peer) for peer in _peers.values())  # the credential is not shown


class KeepAliveGate(peers.Gate):
    """Keeps connections open between requests (HTTP/1.1) and remembers them, so the test can hang up
    on the idle ones as a proxy's idle timeout or a restarted peer would."""

    protocol_version = "HTTP/1.1"
    connections: list = []

    def setup(self):
        super().setup()
        type(self).connections.append(self.connection)


def test_a_connection_the_peer_closed_while_idle_is_not_an_error(db, prometheus, viewer):
    import socket

    from apps.core.resilience import breaker_states, forget_breaker

    KeepAliveGate.upstream, KeepAliveGate.connections = prometheus.url, []
    url, server = peers.serve_gate(KeepAliveGate)
    forget_breaker("prometheus:kept")
    try:
        PrometheusSource.objects.create(name="kept", base_url=url)
        for _ in range(2):
            assert invoke("monitoring.query", viewer, {"source": "kept", "query": "vector(1)"}).result.series[0].value == 1.0
        assert len(KeepAliveGate.connections) == 1  # kept alive: the second query reused the connection
        KeepAliveGate.connections[0].shutdown(socket.SHUT_RDWR)  # the peer hangs up on the idle connection
        assert invoke("monitoring.query", viewer, {"source": "kept", "query": "vector(2)"}).result.series[0].value == 2.0
        assert len(KeepAliveGate.connections) == 2  # a new one
        assert breaker_states()["prometheus:kept"]["failures"] == 0
    finally:
        server.shutdown()
        server.server_close()
