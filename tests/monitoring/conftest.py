"""Real peers for the monitoring tests: a test exporter, an Alertmanager, and a
Prometheus (1 s scrape and evaluation) scraping the exporter, a target that is
down, and the console's own /metrics (a console web process that requires a
bearer token), with rules that fire real alerts into the Alertmanager."""

from __future__ import annotations

import pytest

from apps.core.resilience import forget_breaker
from apps.monitoring.models import PrometheusSource
from tests.support import peers as support
from tests.support.processes import free_port, start_console

from . import peers

METRICS_TOKEN = "scrape-token-for-tests"


@pytest.fixture(scope="session")
def exporter():
    peer = peers.start_exporter()
    yield peer
    peer.shutdown()


@pytest.fixture(scope="session")
def metrics_console(django_db_setup, django_db_blocker):
    """A second console web process whose /metrics needs the bearer token (no network is allowed)."""
    with django_db_blocker.unblock():
        proc, url = start_console(METRICS_TOKEN=METRICS_TOKEN, METRICS_ALLOWED_NETWORKS="")
    yield url
    proc.stop()


@pytest.fixture(scope="session")
def alertmanager():
    peer = peers.start_alertmanager(support.require_binary("prometheus-alertmanager", "alertmanager"))
    yield peer
    peer.shutdown()


@pytest.fixture(scope="session")
def prometheus(exporter, alertmanager, metrics_console):
    binary = support.require_binary("prometheus")
    scrape = {
        "exporter": {"target": f"127.0.0.1:{exporter.port}"},
        "opsconsole": {"target": metrics_console.removeprefix("http://"), "bearer": METRICS_TOKEN},
        "dead": {"target": f"127.0.0.1:{free_port()}"},  # nothing listens: a target that is down
    }
    peer = peers.start_prometheus(binary, scrape, alertmanager=alertmanager.url)
    # Ready when the exporter was scraped and its critical alert reached the Alertmanager.
    # A few scrapes: live dashboards end on the last refresh tick, which must already hold data.
    peers.wait_for(lambda: peers.instant(peer.url, 'count_over_time(up{job="exporter"}[1m]) >= 3'), what="three scrapes of the exporter")
    peers.wait_for(
        lambda: b"DemoServiceDown" in peers.http_get(alertmanager.url + "/api/v2/alerts")[1], what="the alert in the Alertmanager"
    )
    yield peer
    peer.shutdown()


@pytest.fixture
def source(db, prometheus, alertmanager):
    """The source "default" pointing at the session's Prometheus and Alertmanager."""
    for name in ("prometheus:default", "alertmanager:default"):
        forget_breaker(name)
    return PrometheusSource.objects.create(name="default", base_url=prometheus.url, alertmanager_url=alertmanager.url, timeout_seconds=5)


@pytest.fixture
def viewer(make_user, actor_of):
    return actor_of(make_user("viewer"))


@pytest.fixture
def operator(make_user, actor_of):
    return actor_of(make_user("operator"))
