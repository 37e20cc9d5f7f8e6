"""A failed call changes nothing: escalating or resolving an incident by hand records its change and then pages or
tells the targets; when a target it names is not configured (policies name targets by value, unchecked), the call
fails and neither the level, the status, the resolved alerts nor a timeline entry of it stays."""

import pytest

from apps.audit.models import AuditEvent
from apps.comms import incidents
from apps.comms.errors import CommsError
from apps.comms.incidents import AlertIn
from apps.comms.models import Alert, Delivery, EscalationPolicy, Incident, RoutingRule
from apps.core import live
from apps.core.gateway import invoke


@pytest.fixture
def operator(make_user, actor_of):
    return actor_of(make_user("operator"))


def opened(policy: EscalationPolicy) -> Incident:
    """An incident of the default route, paged at level 1 of `policy`."""
    RoutingRule.objects.create(name="everything", is_default=True, targets=["ops-slack"])
    incident = incidents.receive_alert(AlertIn(type="HighErrorRate", severity="warning", title="5xx", policy=policy.name), "t").incident
    assert incident.escalation_level == 1
    return incident


def state(incident: Incident) -> tuple:
    row = Incident.objects.get(pk=incident.pk)
    return (
        row.status, row.escalation_level, row.next_escalation_at, row.resolved_at, row.resolved_by,
        list(row.timeline.values_list("kind", "text")), list(row.alerts.values_list("status", flat=True)), Delivery.objects.count(),
    )  # fmt: skip


def test_an_escalation_whose_level_names_an_unknown_target_changes_nothing(operator, connectors):
    policy = EscalationPolicy.objects.create(
        name="p", levels=[{"after_minutes": 0, "targets": ["ops-slack"]}, {"after_minutes": 30, "targets": ["oncall-pager"]}]
    )
    incident = opened(policy)
    before = state(incident)
    with pytest.raises(CommsError, match="No target named oncall-pager"):
        invoke("comms.escalate_incident", operator, {"incident_id": incident.pk, "reason": "customers calling"})
    assert state(incident) == before
    event = AuditEvent.objects.get(operation="comms.escalate_incident")
    assert (event.outcome, event.error) == ("failed", "No target named oncall-pager; see the Comms setup page for the configured targets.")


def test_a_resolution_that_cannot_tell_a_paged_target_changes_nothing(operator, connectors):
    policy = EscalationPolicy.objects.create(name="p", levels=[{"after_minutes": 0, "targets": ["ops-slack"]}])
    incident = opened(policy)
    # Level 1, already paged, is edited to name a target nobody configured: the resolution tells it, and cannot.
    EscalationPolicy.objects.filter(pk=policy.pk).update(levels=[{"after_minutes": 0, "targets": ["oncall-pager"]}])
    before = state(incident)
    assert before[0] == Incident.OPEN and before[6] == [Alert.FIRING]
    with pytest.raises(CommsError, match="No target named oncall-pager"):
        invoke("comms.resolve_incident", operator, {"incident_id": incident.pk, "comment": "rolled back"})
    assert state(incident) == before
    assert AuditEvent.objects.get(operation="comms.resolve_incident").outcome == "failed"


def test_a_failed_call_shows_nothing_live_and_a_done_one_once_committed(operator, connectors, django_capture_on_commit_callbacks):
    """Live fragments are pushed when the call's transaction commits (apps.core.live.publish): an escalation that fails
    and is rolled back leaves nothing to push (an open incident page never shows it as if it had happened); a comment
    pushes its entry (the incident's page and the incident list)."""
    policy = EscalationPolicy.objects.create(
        name="p", levels=[{"after_minutes": 0, "targets": ["ops-slack"]}, {"after_minutes": 30, "targets": ["oncall-pager"]}]
    )
    incident = opened(policy)
    with django_capture_on_commit_callbacks() as pushed, pytest.raises(CommsError):
        invoke("comms.escalate_incident", operator, {"incident_id": incident.pk, "reason": "customers calling"})
    assert timeline_pushes(pushed) == []
    with django_capture_on_commit_callbacks(execute=True) as pushed:
        invoke("comms.comment_incident", operator, {"incident_id": incident.pk, "text": "looking"})
    assert len(timeline_pushes(pushed)) == 2


def timeline_pushes(callbacks) -> list:
    """The live pushes left to run at commit (apps.core.live.publish; the audit log leaves its own callbacks)."""
    return [callback for callback in callbacks if callback.__module__ == live.__name__]
