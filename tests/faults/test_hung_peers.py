"""A peer that accepts connections and never answers: each call waits one read
timeout (never a retry on top), each timeout counts against the connector's
breaker, the breaker opens after BREAKER_FAIL_MAX calls, and from then on pages
answer at once with a clear error, without touching the peer. Counted by the
connections the hung peer accepted, not by the clock (bench/faults.py has the
figures)."""

from __future__ import annotations

import socket
import threading

import pytest

from apps.audit.models import AuditEvent
from apps.core.errors import PeerUnavailable
from apps.core.gateway import invoke
from apps.core.resilience import breaker_states, forget_breaker
from apps.monitoring.models import PrometheusSource


class HungPeer:
    """A TCP server on loopback that accepts every connection and never sends a byte."""

    def __init__(self, port: int = 0):
        self.server = socket.create_server(("127.0.0.1", port))
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return  # closed
            self.held.append(conn)

    @property
    def accepted(self) -> int:
        return len(self.held)

    def close(self):
        self.server.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def hung_peer():
    peer = HungPeer()
    yield peer
    peer.close()


def test_a_hung_prometheus_opens_the_breaker_after_five_calls(db, settings, hung_peer, client_as, actor_of):
    settings.BREAKER_FAIL_MAX = 5
    forget_breaker("prometheus:hung")
    # 0.5 s query timeout: the console waits 1 s for an answer that never comes.
    PrometheusSource.objects.create(name="hung", base_url=f"http://127.0.0.1:{hung_peer.port}", timeout_seconds=0.5)
    client = client_as("viewer")
    actor = actor_of(client.user)

    for calls in range(1, 6):
        with pytest.raises(PeerUnavailable, match=r"Prometheus of source 'hung' .* did not answer in time \(TimeoutError\): timed out"):
            invoke("monitoring.query", actor, {"source": "hung", "query": "up"})
        assert hung_peer.accepted == calls  # one connection per call: a timeout is not retried
        assert breaker_states()["prometheus:hung"] == {"state": "open" if calls == 5 else "closed", "failures": calls}

    response = client.get("/monitoring/query/", {"source": "hung", "query": "up"})
    assert response.status_code == 503
    assert "circuit breaker is open" in response.content.decode() and "Traceback" not in response.content.decode()
    assert hung_peer.accepted == 5  # answered without waiting on the peer
    # Every call audited, with the reason.
    events = AuditEvent.objects.filter(operation="monitoring.query", target__contains="up").order_by("seq")
    assert [e.outcome for e in events] == ["failed"] * 6
    assert all("did not answer in time" in e.error for e in events[:5]) and "circuit breaker is open" in events[5].error


def test_a_hung_docker_engine_costs_one_timeout_per_call_and_opens_the_breaker(db, settings, hung_peer, make_user, actor_of):
    """The same rule through the Docker SDK (requests): a read is never retried after a timeout."""
    from apps.infrastructure.models import Environment

    settings.BREAKER_FAIL_MAX = 5
    env = Environment.objects.create(name="hung-engine", engine_url=f"tcp://127.0.0.1:{hung_peer.port}", timeout_seconds=1)
    forget_breaker(f"docker:{env.name}")
    actor = actor_of(make_user("operator"))
    for calls in range(1, 6):
        with pytest.raises(PeerUnavailable, match=r"The Docker engine of .* did not answer in time"):
            invoke("infrastructure.containers", actor, {"environment": env.name})
        assert hung_peer.accepted == calls
    with pytest.raises(PeerUnavailable, match="circuit breaker is open"):
        invoke("infrastructure.containers", actor, {"environment": env.name})
    assert hung_peer.accepted == 5


def test_a_hung_s3_endpoint_costs_one_timeout_per_call_and_opens_the_breaker(db, settings, hung_peer, client_as, actor_of):
    """The same rule through boto3: botocore's own retries (kept for throttling) never follow a timeout."""
    from tests.storage.conftest import make_connection

    settings.BREAKER_FAIL_MAX = 5
    settings.STORAGE_READ_TIMEOUT = 0.5
    conn = make_connection(f"http://127.0.0.1:{hung_peer.port}", name="hung-s3")
    forget_breaker(f"storage:{conn.name}")
    client = client_as("viewer")
    actor = actor_of(client.user)
    for calls in range(1, 6):
        with pytest.raises(PeerUnavailable, match=r"S3 endpoint of connection hung-s3 did not answer in time \(ReadTimeoutError\)"):
            invoke("storage.buckets", actor, {"connection": conn.name})
        assert hung_peer.accepted == calls  # one connection per call: neither botocore nor the console retried
        assert breaker_states()["storage:hung-s3"] == {"state": "open" if calls == 5 else "closed", "failures": calls}

    response = client.get(f"/storage/c/{conn.name}/")
    assert response.status_code == 503
    assert "circuit breaker is open" in response.content.decode() and "Traceback" not in response.content.decode()
    assert hung_peer.accepted == 5
