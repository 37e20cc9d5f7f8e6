"""A real Prometheus fires a real alert, a real Alertmanager posts it to the
console's webhook receiver: an incident opens; when the alert stops, the
Alertmanager's resolved notification resolves it."""

import json

import pytest

from apps.comms.models import Incident
from tests.monitoring import peers
from tests.support import peers as support
from tests.support.processes import start_console

TOKEN = "alertmanager-to-console-token"
RULES = """groups:
  - name: integration
    rules:
      - alert: DemoServiceDown
        expr: demo_service_up{service="db"} == 0
        labels: {severity: critical, service: db}
        annotations: {summary: "service {{ $labels.service }} is down"}
"""


def alertmanager_config(console_url: str) -> str:
    return json.dumps({
        "route": {"receiver": "console", "group_by": ["alertname"], "group_wait": "0s", "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [{"name": "console", "webhook_configs": [{
            "url": f"{console_url}/comms/alertmanager/", "send_resolved": True,
            "http_config": {"authorization": {"credentials": TOKEN}},
        }]}],
    })  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_real_alertmanager_opens_and_resolves_an_incident(django_db_blocker):
    console, console_url = start_console(COMMS_ALERTMANAGER_TOKEN=TOKEN)
    exporter = peers.start_exporter()
    alertmanager = peers.start_alertmanager(
        support.require_binary("prometheus-alertmanager", "alertmanager"), alertmanager_config(console_url)
    )
    prometheus = peers.start_prometheus(
        support.require_binary("prometheus"),
        {"exporter": {"target": f"127.0.0.1:{exporter.port}"}},
        alertmanager=alertmanager.url,
        rules=RULES,
    )
    try:
        incident = peers.wait_for(lambda: Incident.objects.filter(source="alertmanager", service="db").first(), timeout=60,
                                  what="the incident opened by the Alertmanager webhook")  # fmt: skip
        assert incident.status == Incident.OPEN and incident.title == "service db is down"
        assert incident.alerts.filter(labels__service="db", status="firing").exists()
        # The alert stops (its source is gone); the Alertmanager times it out and sends "resolved".
        prometheus.stop()
        peers.wait_for(lambda: Incident.objects.get(pk=incident.pk).status == Incident.RESOLVED, timeout=90,
                       what="the incident resolved by the Alertmanager's resolved notification")  # fmt: skip
        assert incident.timeline.filter(kind="resolve", actor="alertmanager").exists()
    finally:
        for peer in (prometheus, alertmanager, exporter):
            peer.shutdown()
        console.stop()
