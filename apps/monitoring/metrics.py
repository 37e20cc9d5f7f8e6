"""The console's own metrics at /metrics, added up over all its processes.

Web, worker and beat are separate processes (and production runs several of
each), so prometheus-client's multiprocess mode is used: every process writes
its samples to memory-mapped files in settings.METRICS_DIR (the settings set
PROMETHEUS_MULTIPROC_DIR before anything imports prometheus-client) and a
scrape of any web process adds up the files of all. Counters and histograms
sum; the gauges below say how they combine across processes. Values computed
from shared state (the Celery queue depth) are read at scrape time instead.
"""

from __future__ import annotations

import hmac
import ipaddress
import time

from django.conf import settings
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from apps.core.metrics import SCRAPE_COLLECTORS, record_breaker_states
from apps.core.middleware import client_ip

HTTP_SECONDS = Histogram(
    "opsconsole_http_request_duration_seconds",
    "Web request latency by view (URL name) and method.",
    ["view", "method"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HTTP_REQUESTS = Counter("opsconsole_http_requests_total", "Web requests by view, method and status code.", ["view", "method", "status"])
PEER_REQUESTS = Counter(
    "opsconsole_monitoring_peer_requests_total",
    "HTTP requests the console sent to Prometheus and Alertmanager, by peer, source, endpoint and status code (or error).",
    ["peer", "source", "endpoint", "outcome"],
)
DASHBOARD_REFRESHES = Counter("opsconsole_dashboard_refreshes_total", "Shared live refreshes published, by dashboard.", ["dashboard"])
DASHBOARD_VIEWERS = Gauge("opsconsole_dashboard_viewers", "Browsers watching a dashboard live.", ["dashboard"], multiprocess_mode="livesum")


class QueueCollector:
    """Celery queue depth, read from the broker when scraped (it is shared state, not a process's)."""

    def collect(self):
        from apps.core.health import broker_status

        status, depth = broker_status()
        up = GaugeMetricFamily("opsconsole_broker_up", "1 when the Celery broker (Redis) answers.")
        up.add_metric([], 1 if status == "ok" else 0)
        yield up
        if depth is not None:
            queued = GaugeMetricFamily("opsconsole_celery_queue_depth", "Jobs waiting in the Celery queue.", labels=["queue"])
            queued.add_metric([settings.CELERY_TASK_DEFAULT_QUEUE], depth)
            yield queued


def may_scrape(request) -> bool:
    if settings.METRICS_TOKEN:
        supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if supplied and hmac.compare_digest(supplied, settings.METRICS_TOKEN):
            return True
    address = client_ip(request)
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in settings.METRICS_ALLOWED_NETWORKS)


def exposition(request):
    """GET /metrics: Prometheus text format, for a bearer token or an allowed network."""
    if not may_scrape(request):
        return HttpResponse(
            "Forbidden: send the METRICS_TOKEN as a bearer token, or scrape from a network in METRICS_ALLOWED_NETWORKS.\n",
            status=403,
            content_type="text/plain",
        )
    record_breaker_states()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(settings.METRICS_DIR))
    registry.register(QueueCollector())
    for collector in SCRAPE_COLLECTORS:
        registry.register(collector)
    # Text format 0.0.4: every Prometheus reads it (our names are all classic ones).
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_PLAIN_0_0_4)


class RequestMetricsMiddleware:
    """Latency and count of every web request, labelled by the view's URL name
    (not the path: ids in paths would make every URL its own series)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name if match else "") or "unmatched"
        method = request.method if request.method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD") else "other"
        HTTP_SECONDS.labels(view, method).observe(time.perf_counter() - started)
        HTTP_REQUESTS.labels(view, method, str(response.status_code)).inc()
        return response
