"""The Alertmanager webhook receiver, posted to over HTTP with real-shaped v4
payloads (grouped alerts). tests/integration/test_alertmanager_incidents.py has
a real Prometheus and Alertmanager posting here."""

import copy
import json

import pytest

from apps.audit.models import AuditEvent
from apps.comms.models import Alert, Incident, RoutingRule

TOKEN = "am-bearer-token-for-tests"

FIRING = {
    "receiver": "ops-console",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "HighErrorRate", "instance": "api-1:9100", "job": "api", "service": "api", "severity": "critical"},
            "annotations": {"summary": "5xx above 2% on api-1", "description": "error ratio 0.034"},
            "startsAt": "2024-05-01T10:00:00.000Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=...",
            "fingerprint": "1f2e3d4c5b6a7980",
        },
        {
            "status": "firing",
            "labels": {"alertname": "HighErrorRate", "instance": "api-2:9100", "job": "api", "service": "api", "severity": "critical"},
            "annotations": {"summary": "5xx above 2% on api-2", "description": "error ratio 0.051"},
            "startsAt": "2024-05-01T10:00:30.000Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=...",
            "fingerprint": "a1b2c3d4e5f60718",
        },
    ],
    "groupLabels": {"alertname": "HighErrorRate"},
    "commonLabels": {"alertname": "HighErrorRate", "job": "api", "service": "api", "severity": "critical"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "version": "4",
    "groupKey": '{}/{severity="critical"}:{alertname="HighErrorRate"}',
    "truncatedAlerts": 0,
}


@pytest.fixture
def am_token(settings):
    settings.COMMS_ALERTMANAGER_TOKEN = TOKEN


@pytest.fixture
def route(connectors):
    return RoutingRule.objects.create(name="api", services=["api"], targets=["ops-slack", "oncall-sms"])


def post(client, payload, token=TOKEN):
    return client.post("/comms/alertmanager/", json.dumps(payload), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")


def resolved(payload, *indexes):
    payload = copy.deepcopy(payload)
    for i in indexes:
        payload["alerts"][i]["status"] = "resolved"
        payload["alerts"][i]["endsAt"] = "2024-05-01T10:20:00.000Z"
    if all(a["status"] == "resolved" for a in payload["alerts"]):
        payload["status"] = "resolved"
    return payload


def test_bearer_token_is_required(client, am_token, db):
    assert post(client, FIRING, token="wrong").status_code == 401
    assert client.post("/comms/alertmanager/", "{}", content_type="application/json").status_code == 401
    assert not Incident.objects.exists()


def test_receiver_is_closed_without_a_configured_token(client, settings, db):
    settings.COMMS_ALERTMANAGER_TOKEN = ""
    assert post(client, FIRING, token="").status_code == 401


def test_a_group_opens_one_incident_and_resolves_it(client, am_token, route, slack, twilio, send_queued):
    response = post(client, FIRING)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["outcome"] == "opened"
    incident = Incident.objects.get(pk=body["incident_id"])
    assert incident.source == "alertmanager" and incident.severity == "critical" and incident.alerts.count() == 2
    assert incident.title == "HighErrorRate (2 alerts)" and incident.targets == ["ops-slack", "oncall-sms"]
    deliveries = send_queued()
    assert [d.status for d in deliveries] == ["sent", "sent"]  # one notification for the group, per target
    text = slack.calls("chat.postMessage")[0]["json"]["text"]
    assert "5xx above 2% on api-1" in text and "5xx above 2% on api-2" in text

    # Alertmanager repeats the group (repeat_interval): counted, not sent again.
    assert post(client, FIRING).json()["outcome"] == "updated"
    assert send_queued() == deliveries
    assert Alert.objects.get(fingerprint="1f2e3d4c5b6a7980").suppressed == 1

    # One alert resolves: the incident stays open.
    assert post(client, resolved(FIRING, 0)).json()["outcome"] == "updated"
    assert Incident.objects.get(pk=incident.pk).status == "open"
    # All resolved: the incident resolves and everyone notified hears it.
    assert post(client, resolved(FIRING, 0, 1)).json() == {"outcome": "resolved", "incident_id": incident.pk}
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.resolved_by == "alertmanager"
    assert [d.title for d in send_queued()[2:]] == [f"Resolved: incident #{incident.pk} HighErrorRate (2 alerts)"] * 2
    timeline = list(incident.timeline.values_list("kind", flat=True))
    assert timeline[0] == "opened" and timeline[-3:] == ["resolve", "notification", "notification"] and timeline.count("alert") == 4
    audit = AuditEvent.objects.filter(operation="comms.ingest_alertmanager", outcome="ok")
    assert audit.count() == 4 and audit.first().actor == "system"


def test_a_new_alert_in_an_open_group_is_announced(client, am_token, route, slack, send_queued):
    first = copy.deepcopy(FIRING)
    first["alerts"] = first["alerts"][:1]
    post(client, first)
    assert len(send_queued()) == 2
    assert post(client, FIRING).json()["outcome"] == "updated"
    new = send_queued()[2:]
    assert [d.title for d in new] == [new[0].title] * 2 and "1 new alert(s)" in new[0].title


def test_resolved_group_never_seen_is_ignored(client, am_token, route):
    assert post(client, resolved(FIRING, 0, 1)).json() == {"outcome": "ignored", "incident_id": None}


def test_a_malformed_payload_is_refused_and_audited(client, am_token, db):
    response = post(client, {"version": "4", "status": "burning", "alerts": []})
    assert response.status_code == 422 and "groupKey" in response.json()["fields"]
    assert AuditEvent.objects.filter(operation="comms.ingest_alertmanager", outcome="failed").exists()
