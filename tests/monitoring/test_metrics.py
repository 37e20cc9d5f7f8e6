"""The console's own /metrics: protected by token or network, added up over
processes (multiprocess files), and scraped by the real Prometheus."""

import re

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.testing.websocket import WebsocketCommunicator
from django.conf import settings as django_settings

from apps.core.gateway import invoke
from apps.monitoring.errors import MonitoringError
from opsconsole.asgi import application

from . import peers
from .conftest import METRICS_TOKEN


def sample(text: str, name: str, **labels) -> float | None:
    """The value of one sample in exposition text (labels matched as a subset)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', line.split("}")[0]))
        if line.split("{")[0].split(" ")[0] == name and all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_need_the_token_or_an_allowed_network(client, settings, db):  # db: stream lag is read when scraped
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "s3cret", []
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain; version=0.0.4")
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "", ["10.0.0.0/8", "fd00::/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.5").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="fd00::5").status_code == 200
    settings.CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"  # behind a proxy the real client counts
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403


def test_request_latency_by_view_and_operation_calls(client_as, source, settings):
    client = client_as("viewer")
    assert client.get("/monitoring/targets/").status_code == 200
    text = client.get("/metrics").content.decode()
    assert sample(text, "opsconsole_http_request_duration_seconds_count", view="monitoring:targets", method="GET") >= 1
    assert sample(text, "opsconsole_http_requests_total", view="monitoring:targets", method="GET", status="200") >= 1
    assert sample(text, "opsconsole_operation_calls_total", operation="monitoring.targets", outcome="ok", channel="web") >= 1
    assert (
        sample(text, "opsconsole_monitoring_peer_requests_total", peer="prometheus", source="default", endpoint="targets", outcome="200")
        >= 1
    )


def test_celery_queue_depth_is_read_from_the_broker(client, settings, db):
    settings.CELERY_TASK_DEFAULT_QUEUE = "monitoring-depth-test"
    key = settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] + "monitoring-depth-test"
    broker = redis.Redis.from_url(settings.REDIS_URL)
    broker.rpush(key, "a", "b", "c")
    try:
        text = client.get("/metrics").content.decode()
    finally:
        broker.delete(key)
    assert sample(text, "opsconsole_celery_queue_depth", queue="monitoring-depth-test") == 3.0
    assert sample(text, "opsconsole_broker_up") == 1.0


@pytest.mark.django_db(transaction=True)
async def test_websocket_clients_are_counted(client, make_user):
    user = await sync_to_async(make_user)("viewer")
    await sync_to_async(client.force_login)(user)

    def clients() -> float:
        return sample(client.get("/metrics").content.decode(), "opsconsole_websocket_clients", topic="jobs") or 0.0

    before = await sync_to_async(clients)()
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    comms = [
        WebsocketCommunicator(application, "/ws/live/jobs/", headers=[(b"cookie", cookie), (b"origin", b"http://localhost")])
        for _ in range(3)
    ]
    for comm in comms:
        assert (await comm.connect(timeout=5))[0]
    assert await sync_to_async(clients)() == before + 3
    for comm in comms:
        await comm.disconnect()
    assert await sync_to_async(clients)() == before


def test_samples_of_every_process_are_added_up(source, viewer, metrics_console):
    """The test process and the web subprocess write to the same metric files: a scrape of either sees both."""

    def calls() -> float:
        status, body = peers.http_get(metrics_console + "/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert status == 200
        return sample(body.decode(), "opsconsole_operation_calls_total", operation="monitoring.query", outcome="ok", channel="web") or 0.0

    before = calls()
    for _ in range(4):
        invoke("monitoring.query", viewer, {"query": "vector(1)"})
    assert calls() == before + 4
    assert django_settings.METRICS_DIR.is_dir() and any(django_settings.METRICS_DIR.glob("counter_*.db"))


def test_prometheus_scrapes_the_console(source, viewer):
    """A failed call in this process shows up in the real Prometheus, scraped from the web process with the token."""
    query = 'sum(opsconsole_operation_calls_total{job="opsconsole", operation="monitoring.query", outcome="failed"}) or vector(0)'

    def failed() -> float:
        return invoke("monitoring.query", viewer, {"query": query}).result.series[0].value

    before = failed()
    with pytest.raises(MonitoringError):
        invoke("monitoring.query", viewer, {"query": "rate(up["})
    assert peers.wait_for(lambda: failed() == before + 1, timeout=15, what="Prometheus to scrape the failed call")


@pytest.mark.django_db(transaction=True)
def test_job_durations_from_the_worker_process_are_exposed(make_user, actor_of, celery_worker, metrics_console):
    from apps.core.models import Job

    def succeeded() -> float:
        _, body = peers.http_get(metrics_console + "/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"})
        return sample(body.decode(), "opsconsole_job_duration_seconds_count", operation="core.echo_job", status="succeeded") or 0.0

    before = succeeded()
    job = invoke("core.echo_job", actor_of(make_user("operator")), {"steps": 1, "step_seconds": 0}).job
    peers.wait_for(lambda: Job.objects.get(pk=job.pk).status == Job.SUCCEEDED, what="the job to finish")
    # Observed in the worker process, exposed by a web process.
    assert peers.wait_for(lambda: succeeded() == before + 1, timeout=10, what="the job duration in /metrics")
