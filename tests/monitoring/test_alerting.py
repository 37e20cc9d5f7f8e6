"""Alerts from the real rule file, in Prometheus and in the Alertmanager, and
silences created and expired through Alertmanager's API v2."""

import pytest

from apps.audit.models import AuditEvent
from apps.core.errors import PermissionDenied
from apps.core.gateway import invoke
from apps.monitoring.errors import MonitoringError
from tests.monitoring import peers


def names(alerts):
    return sorted({a.name for a in alerts})


def test_prometheus_alerts_by_state_and_severity(source, viewer):
    result = invoke("monitoring.alerts", viewer, {"origin": "prometheus"}).result
    by_name = {a.name: a for a in result.alerts}
    assert by_name["DemoServiceDown"].state == "firing"
    assert by_name["DemoServiceDown"].labels["service"] == "db"
    assert by_name["DemoServiceDown"].annotations["summary"] == "service db is down"
    assert by_name["DemoServiceDown"].value == "0e+00"
    assert by_name["DemoSlowBurn"].state == "pending"  # its `for: 1h` has not passed
    firing = invoke("monitoring.alerts", viewer, {"origin": "prometheus", "state": "firing"}).result.alerts
    assert names(firing) == ["DemoQueueBacklog", "DemoServiceDown"]
    critical = invoke("monitoring.alerts", viewer, {"origin": "prometheus", "severity": "critical"}).result.alerts
    assert names(critical) == ["DemoServiceDown"]


def test_alertmanager_received_the_firing_alerts(source, viewer):
    result = invoke("monitoring.alerts", viewer, {"origin": "alertmanager"}).result
    assert {"DemoServiceDown", "DemoQueueBacklog"} <= set(names(result.alerts))
    assert "DemoSlowBurn" not in names(result.alerts)  # pending alerts are not sent
    assert all(a.fingerprint and a.since for a in result.alerts)
    both = invoke("monitoring.alerts", viewer, {}).result
    assert {a.origin for a in both.alerts} == {"prometheus", "alertmanager"} and both.problems == []


def test_alerts_without_an_alertmanager_still_list_prometheus(source, viewer):
    source.alertmanager_url = ""
    source.save()
    result = invoke("monitoring.alerts", viewer, {}).result
    assert result.problems == ["Source 'default' has no Alertmanager."]
    assert {a.origin for a in result.alerts} == {"prometheus"}
    with pytest.raises(MonitoringError, match="has no Alertmanager URL"):
        invoke("monitoring.silences", viewer, {})


def test_silence_lifecycle(source, operator, alertmanager):
    params = {
        "matchers": [{"name": "alertname", "value": "DemoQueueBacklog"}, {"name": "job", "value": "exporter"}],
        "duration_minutes": 30,
        "comment": "draining the queue",
    }
    created = invoke("monitoring.silence_create", operator, params).result
    assert (created.ends_at - created.starts_at).total_seconds() == 1800
    listed = invoke("monitoring.silences", operator, {}).result.silences
    (silence,) = [s for s in listed if s.id == created.silence_id]
    assert (silence.state, silence.created_by, silence.comment) == ("active", operator.name, "draining the queue")
    assert [str(m) for m in silence.matchers] == ["alertname='DemoQueueBacklog'", "job='exporter'"]
    # The Alertmanager applies it to the real alert.
    suppressed = peers.wait_for(
        lambda: [a for a in invoke("monitoring.alerts", operator, {"origin": "alertmanager", "state": "suppressed"}).result.alerts],
        what="the alert to be suppressed",
    )
    assert names(suppressed) == ["DemoQueueBacklog"] and suppressed[0].silenced_by == [created.silence_id]

    invoke("monitoring.silence_expire", operator, {"silence_id": created.silence_id})
    expired = invoke("monitoring.silences", operator, {"state": "expired"}).result.silences
    assert created.silence_id in [s.id for s in expired]
    assert created.silence_id not in [s.id for s in invoke("monitoring.silences", operator, {}).result.silences]
    events = list(AuditEvent.objects.filter(operation__startswith="monitoring.silence_").order_by("seq"))
    assert [(e.operation, e.outcome) for e in events] == [("monitoring.silence_create", "ok"), ("monitoring.silence_expire", "ok")]
    assert events[0].target == "default: alertname='DemoQueueBacklog', job='exporter'"


def test_expiring_an_unknown_silence_is_a_clear_error(source, operator):
    with pytest.raises(MonitoringError, match=r"Alertmanager refused the request .*silence not found"):
        invoke("monitoring.silence_expire", operator, {"silence_id": "00000000-0000-0000-0000-000000000000"})


def test_alertmanager_rejects_a_silence_matching_everything(source, operator):
    params = {"matchers": [{"name": "job", "value": ".*", "is_regex": True}], "comment": "everything"}
    with pytest.raises(MonitoringError, match="Alertmanager refused the request"):
        invoke("monitoring.silence_create", operator, params)


def test_viewers_may_list_but_not_create_silences(source, viewer):
    assert invoke("monitoring.silences", viewer, {}).result is not None
    with pytest.raises(PermissionDenied):
        invoke("monitoring.silence_create", viewer, {"matchers": [{"name": "alertname", "value": "X"}], "comment": "nope"})
