"""Alerts: duplicate suppression in a window, grouping into one notification,
inhibition, escalation level by level (a driven clock, no sleeps), ack and resolve."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.comms import incidents
from apps.comms.errors import CommsError
from apps.comms.incidents import AlertIn
from apps.comms.models import Alert, Delivery, EscalationPolicy, Incident, InhibitRule, RoutingRule
from apps.core.gateway import invoke


@pytest.fixture
def operator(make_user, actor_of):
    return actor_of(make_user("operator"))


@pytest.fixture
def default_route(connectors):
    return RoutingRule.objects.create(name="everything", is_default=True, targets=["ops-slack"])


def alert(**fields):
    return AlertIn(**{"type": "HighErrorRate", "severity": "warning", "title": "5xx above 2%", "service": "api", **fields})


def test_send_alert_opens_an_incident_and_notifies_the_route(operator, default_route, slack, send_queued):
    result = invoke(
        "comms.send_alert", operator, {"type": "HighErrorRate", "severity": "critical", "title": "5xx above 2%", "service": "api"}
    ).result
    assert result.status == "notified" and result.targets == ["ops-slack"]
    incident = Incident.objects.get(pk=result.incident_id)
    assert incident.status == "open" and incident.severity == "critical" and incident.service == "api"
    (delivery,) = send_queued()
    assert delivery.status == "sent" and delivery.incident == incident
    assert slack.calls("chat.postMessage")[0]["json"]["text"].startswith(f"🔴 [CRITICAL] Incident #{incident.pk}: 5xx above 2%")
    kinds = list(incident.timeline.values_list("kind", flat=True))
    assert kinds == ["opened", "notification"]


def test_repeats_inside_the_window_are_counted_not_sent(default_route, send_queued):
    t0 = timezone.now()
    first = incidents.receive_alert(alert(window_minutes=10), "tester", now=t0)
    for minutes in (1, 5, 9):
        repeat = incidents.receive_alert(alert(window_minutes=10), "tester", now=t0 + timedelta(minutes=minutes))
        assert repeat.status == "suppressed" and repeat.alert.pk == first.alert.pk
    assert len(send_queued()) == 1
    original = Alert.objects.get(pk=first.alert.pk)
    assert original.occurrences == 4 and original.suppressed == 3
    # After the window the alert is news again: one more notification, on the same incident.
    later = incidents.receive_alert(alert(window_minutes=10), "tester", now=t0 + timedelta(minutes=11))
    assert later.status == "notified" and later.incident == first.incident
    assert len(send_queued()) == 2


def test_suppression_can_be_turned_off_and_keys_define_duplicates(default_route, send_queued):
    t0 = timezone.now()
    incidents.receive_alert(alert(), "t", now=t0)
    assert incidents.receive_alert(alert(suppress=False), "t", now=t0).status == "notified"
    other_labels = incidents.receive_alert(alert(labels={"pod": "api-2"}), "t", now=t0)
    assert (
        other_labels.status == "notified"
        and other_labels.alert.fingerprint != incidents.receive_alert(alert(), "t", now=t0).alert.fingerprint
    )
    a = incidents.receive_alert(alert(dedup_key="disk-db1", title="Disk 91%"), "t", now=t0)
    b = incidents.receive_alert(alert(dedup_key="disk-db1", title="Disk 93%", type="Other"), "t", now=t0)
    assert b.status == "suppressed" and b.alert.pk == a.alert.pk


def test_alerts_grouped_by_labels_go_out_as_one_notification(connectors, slack, send_queued):
    RoutingRule.objects.create(name="api", services=["api"], targets=["ops-slack"], group_by=["service"], group_wait_seconds=30)
    t0 = timezone.now()
    first = incidents.receive_alert(alert(type="HighErrorRate", title="5xx above 2%"), "t", now=t0)
    second = incidents.receive_alert(alert(type="HighLatency", title="p99 above 1 s"), "t", now=t0 + timedelta(seconds=10))
    assert first.status == second.status == "grouped" and first.incident == second.incident
    assert incidents.flush_due(now=t0 + timedelta(seconds=29)) == 0
    assert send_queued() == []
    assert incidents.flush_due(now=t0 + timedelta(seconds=30)) == 1
    assert len(send_queued()) == 1
    text = slack.calls("chat.postMessage")[0]["json"]["text"]
    assert "(+1 more alerts)" in text and "5xx above 2%" in text and "p99 above 1 s" in text
    # Another service is another group.
    db = incidents.receive_alert(alert(service="db", title="db slow"), "t", now=t0)
    assert db.incident != first.incident


def test_a_firing_critical_inhibits_matching_warnings(default_route, send_queued):
    InhibitRule.objects.create(
        name="critical mutes warning", source_match={"severity": "critical"}, target_match={"severity": "warning"}, equal=["service"]
    )
    t0 = timezone.now()
    critical = incidents.receive_alert(alert(type="ApiDown", severity="critical", title="api down"), "t", now=t0)
    muted = incidents.receive_alert(alert(type="HighLatency", title="api slow"), "t", now=t0)
    assert muted.status == "inhibited" and muted.alert.inhibited_by == critical.alert
    assert muted.incident == critical.incident
    elsewhere = incidents.receive_alert(alert(type="HighLatency", title="db slow", service="db"), "t", now=t0)
    assert elsewhere.status == "notified"
    assert len(send_queued()) == 2
    # Once the critical is resolved, the warning is news again.
    incidents.resolve(critical.incident, "t", now=t0 + timedelta(minutes=1))
    again = incidents.receive_alert(alert(type="HighLatency", title="api slow"), "t", now=t0 + timedelta(minutes=2))
    assert again.status == "notified" and again.alert.inhibited_by is None


def test_escalation_walks_two_levels_and_stops_on_ack(operator, connectors, slack, twilio, smtp, send_queued):
    policy = EscalationPolicy.objects.create(
        name="api-oncall",
        levels=[
            {"after_minutes": 0, "targets": ["ops-slack"]},
            {"after_minutes": 5, "targets": ["oncall-sms"]},
            {"after_minutes": 10, "targets": ["oncall-email"]},
        ],
    )
    RoutingRule.objects.create(name="api", services=["api"], targets=[], escalation_policy=policy)
    t0 = timezone.now() - timedelta(hours=3)  # the tick's time is never ahead of the clock
    opened = incidents.receive_alert(alert(severity="critical"), "t", now=t0)
    incident = Incident.objects.get(pk=opened.incident.pk)
    assert incident.escalation_level == 1 and incident.next_escalation_at == t0 + timedelta(minutes=5)
    send_queued()
    assert len(slack.calls("chat.postMessage")) == 1 and twilio.calls() == []

    assert incidents.escalate_due(now=t0 + timedelta(minutes=4, seconds=59)) == []
    assert [i.pk for i in incidents.escalate_due(now=t0 + timedelta(minutes=5))] == [incident.pk]
    send_queued()
    assert twilio.calls("Messages.json")[0]["form"]["Body"].startswith("🔴 [CRITICAL] Escalated (level 2)")
    incident.refresh_from_db()
    assert incident.escalation_level == 2 and incident.next_escalation_at == t0 + timedelta(minutes=15)
    event = AuditEvent.objects.get(operation="comms.escalate_due_incident")
    assert (event.channel, event.actor, event.outcome) == ("system", "system", "ok")

    acked = invoke("comms.ack_incident", operator, {"incident_id": incident.pk, "comment": "on it"}).result
    assert acked.status == "acknowledged" and acked.next_escalation_at is None and acked.assignee == operator.name
    assert incidents.escalate_due(now=t0 + timedelta(hours=2)) == []
    send_queued()
    assert smtp.messages == []  # level 3 never paged
    kinds = list(Incident.objects.get(pk=incident.pk).timeline.values_list("kind", flat=True))
    assert kinds.count("escalation") == 1 and "ack" in kinds
    assert AuditEvent.objects.filter(operation="comms.ack_incident", outcome="ok", actor=operator.name).exists()


def test_escalate_by_hand_and_its_limits(operator, connectors, send_queued):
    policy = EscalationPolicy.objects.create(
        name="p", levels=[{"after_minutes": 0, "targets": ["ops-slack"]}, {"after_minutes": 30, "targets": ["oncall-sms"]}]
    )
    opened = incidents.receive_alert(alert(policy="p"), "t")
    assert opened.incident.policy == policy
    info = invoke("comms.escalate_incident", operator, {"incident_id": opened.incident.pk, "reason": "customers calling"}).result
    assert info.escalation_level == 2 and info.next_escalation_at is None
    with pytest.raises(CommsError, match="last level"):
        invoke("comms.escalate_incident", operator, {"incident_id": opened.incident.pk})
    with pytest.raises(CommsError, match="No escalation policy named nope"):
        invoke("comms.send_alert", operator, {"type": "X", "severity": "info", "title": "x", "escalation_policy": "nope"})


def test_resolve_tells_everyone_notified_and_resolves_the_alerts(operator, default_route, send_queued):
    opened = incidents.receive_alert(alert(), "t")
    send_queued()
    info = invoke("comms.resolve_incident", operator, {"incident_id": opened.incident.pk, "comment": "rolled back"}).result
    assert info.status == "resolved" and info.resolved_by == operator.name
    assert Alert.objects.get(pk=opened.alert.pk).status == "resolved"
    last = send_queued()[-1]
    assert last.title.startswith("Resolved: incident") and last.status == Delivery.SENT
    with pytest.raises(CommsError, match="already resolved"):
        invoke("comms.resolve_incident", operator, {"incident_id": opened.incident.pk})
    # A new alert after resolution opens a new incident.
    assert incidents.receive_alert(alert(), "t").incident.pk != opened.incident.pk


def test_comment_and_assign(operator, make_user, default_route):
    other = make_user("operator")
    opened = incidents.receive_alert(alert(), "t")
    info = invoke(
        "comms.comment_incident", operator, {"incident_id": opened.incident.pk, "text": "looking at logs", "assign_to": other.username}
    ).result
    assert info.assignee == other.username
    assert list(opened.incident.timeline.values_list("kind", "text"))[-2:] == [
        ("assign", f"Assigned to {other.username}"),
        ("comment", "looking at logs"),
    ]
    with pytest.raises(CommsError, match="No active user"):
        invoke("comms.comment_incident", operator, {"incident_id": opened.incident.pk, "assign_to": "ghost"})


def test_viewer_may_not_acknowledge(make_user, actor_of, default_route):
    from apps.core.errors import PermissionDenied

    opened = incidents.receive_alert(alert(), "t")
    with pytest.raises(PermissionDenied):
        invoke("comms.ack_incident", actor_of(make_user("viewer")), {"incident_id": opened.incident.pk})
    assert Incident.objects.get(pk=opened.incident.pk).status == "open"
