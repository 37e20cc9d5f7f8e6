"""Prometheus stops: the breaker opens after 5 failures, the dashboard shows the
source as down (no stack trace), and everything recovers when it is back."""

import time

import pytest

from apps.core.errors import PeerUnavailable
from apps.core.gateway import invoke
from apps.core.resilience import breaker_for, breaker_states, forget_breaker
from apps.monitoring.models import Dashboard, Panel, PrometheusSource
from tests.support import peers as support

from . import peers


@pytest.fixture
def flaky_prometheus(exporter):
    peer = peers.start_prometheus(support.require_binary("prometheus"), {"exporter": {"target": f"127.0.0.1:{exporter.port}"}}, rules="")
    peers.wait_for(lambda: peers.instant(peer.url, "demo_queue_depth"), what="the first scrape")
    yield peer
    peer.shutdown()


def next_slot(seconds: int = 1) -> None:
    """Live dashboard data is cached per refresh interval: move to the next one."""
    time.sleep(seconds - time.time() % seconds + 0.05)


def test_breaker_opens_after_five_failures_and_recovers(db, settings, flaky_prometheus, client_as, actor_of):
    # Open for longer than this test can take on any machine; its reset time is then passed by hand below
    # (a reset of a few seconds made the "still open" check a race with the clock on a loaded machine).
    settings.BREAKER_RESET_SECONDS = 600
    forget_breaker("prometheus:flaky")
    source = PrometheusSource.objects.create(name="flaky", base_url=flaky_prometheus.url, timeout_seconds=2)
    board = Dashboard.objects.create(slug="flaky-board", title="Flaky", source=source, refresh_seconds=1)
    Panel.objects.create(dashboard=board, position=0, title="Queue", query="demo_queue_depth", chart="stat")
    Panel.objects.create(dashboard=board, position=1, title="Ticks", query="rate(demo_ticks_total[5s])", chart="line")
    client = client_as("viewer")
    actor = actor_of(client.user)
    # Live data is evaluated at the start of its slot: the next one begins after the first scrape.
    next_slot()
    page = client.get(board.get_absolute_url()).content.decode()
    assert "source flaky up" in page and '<div class="stat level-none">7</div>' in page

    flaky_prometheus.stop()
    # A read is retried (3 attempts with backoff) inside one call: each failed call counts once.
    for failures in range(1, 6):
        with pytest.raises(PeerUnavailable, match=r"Prometheus of source 'flaky' \(http://127.0.0.1:\d+\) did not answer"):
            invoke("monitoring.query", actor, {"source": "flaky", "query": "up"})
        expected = "closed" if failures < 5 else "open"
        assert breaker_states()["prometheus:flaky"] == {"state": expected, "failures": failures}
    # Open: calls fail fast without touching the network.
    with pytest.raises(PeerUnavailable, match="circuit breaker is open"):
        invoke("monitoring.query", actor, {"source": "flaky", "query": "up"})
    metrics = client.get("/metrics").content.decode()
    assert 'opsconsole_circuit_breaker_state{connector="prometheus:flaky"} 2.0' in metrics

    next_slot()
    response = client.get(board.get_absolute_url())
    page = response.content.decode()
    assert response.status_code == 200
    assert "source flaky down" in page and "circuit breaker is open" in page
    assert page.count("Not queried: the source is down.") == 2
    assert "Traceback" not in page

    flaky_prometheus.start_again()
    breaker_for("prometheus:flaky").half_open()  # its reset time has passed: the next call is the trial
    assert invoke("monitoring.query", actor, {"source": "flaky", "query": "demo_queue_depth"}).result.series[0].value == 7.0
    assert breaker_states()["prometheus:flaky"] == {"state": "closed", "failures": 0}
    next_slot()
    page = client.get(board.get_absolute_url()).content.decode()
    assert "source flaky up" in page and '<div class="stat level-none">7</div>' in page
