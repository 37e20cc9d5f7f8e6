"""A canary's analysis step queries a real Prometheus through the monitoring app:
Prometheus scrapes an error ratio this test serves and sets, the canary is
promoted while the ratio meets the success condition, rolled back with no
failed request when it breaches the failure condition, and rolled back too when
Prometheus never answers (an analysis that measured nothing has not passed)."""

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.audit.models import AuditEvent
from apps.core.resilience import forget_breaker
from apps.monitoring.models import PrometheusSource
from tests.monitoring import peers as monitoring
from tests.support import peers as support
from tests.support.processes import free_port

from .conftest import Poller, deploy, endpoint, running_revisions, versions, web_service

pytestmark = pytest.mark.peer


class ErrorRatio:
    """Serves `canary_error_ratio <value>` for Prometheus to scrape; the test sets `value`."""

    def __init__(self):
        ratio = self
        self.value = 0.0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = f"# TYPE canary_error_ratio gauge\ncanary_error_ratio {ratio.value}\n".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.target = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def error_ratio():
    ratio = ErrorRatio()
    yield ratio
    ratio.close()


@pytest.fixture(scope="module")
def prometheus(error_ratio):
    peer = monitoring.start_prometheus(support.require_binary("prometheus"), {"canary": {"target": error_ratio.target}}, rules="")
    yield peer
    peer.shutdown()


@pytest.fixture
def source(db, prometheus):
    forget_breaker("prometheus:canary")
    return PrometheusSource.objects.create(name="canary", base_url=prometheus.url, timeout_seconds=5)


@pytest.fixture
def error_ratio_is(prometheus, error_ratio):
    """Set the error ratio and wait until Prometheus answers with it."""

    def set_to(value: float) -> None:
        error_ratio.value = value
        monitoring.wait_for(lambda: monitoring.instant(prometheus.url, f"canary_error_ratio == {value}"), what=f"Prometheus to see {value}")

    return set_to


def canary_service(operator, environment, images, source) -> None:
    analysis = {
        "source": source.name,
        "query": "canary_error_ratio",
        "success_condition": "result[0] < 0.05",
        "failure_condition": "result[0] > 0.2",
        "count": 3,
        "interval_seconds": 0.5,
        "failure_limit": 1,
    }
    steps = [{"set_weight": 50}, {"analysis": analysis}]
    web_service(operator, environment, images, replicas=2, strategy="canary", options={"steps": steps})


def prometheus_queries() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(operation="monitoring.query", channel="worker").values_list("outcome", "target"))


def test_canary_is_promoted_while_prometheus_meets_the_success_condition(operator, environment, images, podman, source, error_ratio_is):
    canary_service(operator, environment, images, source)
    deploy(operator, environment)
    error_ratio_is(0.01)
    address = endpoint(operator, environment)
    with Poller(address) as poller:
        canary = deploy(operator, environment, image=images.web["v2"])
    assert canary.status == "succeeded", canary.reason
    assert poller.failures == []
    assert versions(address, 10) == {"v2": 10}
    assert running_revisions(podman, environment) == ["2", "2"]
    log = list(canary.log_lines.values_list("text", flat=True))
    assert [line for line in log if "prometheus" in line and line.startswith("measurement ")] == [
        f"measurement {i}/3 — prometheus: successful (result=[0.01])" for i in (1, 2, 3)
    ]
    assert "analysis passed: 3 measurement(s) of health, prometheus passed" in log
    assert prometheus_queries() == [("ok", "canary: canary_error_ratio")] * 3, "measured through the gateway, as the requester"


def test_canary_rolls_back_when_prometheus_breaches_the_failure_condition(operator, environment, images, podman, source, error_ratio_is):
    canary_service(operator, environment, images, source)
    deploy(operator, environment)
    error_ratio_is(0.5)
    address = endpoint(operator, environment)
    with Poller(address) as poller:
        canary = deploy(operator, environment, image=images.web["v2"])
    assert canary.status == "rolled back", canary.reason
    assert canary.reason == (
        "analysis failed: prometheus failed 2 time(s), more than the failure limit 1: prometheus: failed (result=[0.5]); "
        "r1 serves again (2 replica(s))"
    )
    assert poller.failures == []
    assert "v2" in poller.seen and poller.transitions()[-1] == "v1", "the canary served, then v1 alone again"
    assert versions(address, 10) == {"v1": 10}
    assert running_revisions(podman, environment) == ["1", "1"]
    assert canary.service.current_revision.number == 1
    assert canary.job.status == "failed" and "rolled back" in canary.job.error
    assert len(prometheus_queries()) == 2, "the analysis stops at the second failure, before its count"


def test_canary_rolls_back_when_prometheus_never_answers(operator, environment, images):
    forget_breaker("prometheus:canary-down")
    nowhere = PrometheusSource.objects.create(name="canary-down", base_url=f"http://127.0.0.1:{free_port()}", timeout_seconds=0.5)
    canary_service(operator, environment, images, nowhere)
    deploy(operator, environment)
    canary = deploy(operator, environment, image=images.web["v2"])
    assert canary.status == "rolled back", "a metric that was never measured must not promote the canary"
    assert re.fullmatch(
        r"analysis failed: prometheus: none of 3 measurement\(s\) could be taken: prometheus: error \(Prometheus of source "
        r"'canary-down' \(http://127.0.0.1:\d+\) did not answer: .*Connection refused\); r1 serves again \(2 replica\(s\)\)",
        canary.reason,
    ), canary.reason
    assert versions(endpoint(operator, environment), 10) == {"v1": 10}
