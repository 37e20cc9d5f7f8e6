"""Policies and routing rules name targets by value (JSON, no foreign key): comms.delete_target refuses to delete one
they still name, saying which (through the gateway: audited as failed, nothing deleted); once nobody names it, it
goes. The form operations' `deleting` hook does the refusing, in the delete's transaction."""

import pytest

from apps.audit.models import AuditEvent
from apps.comms.errors import CommsError
from apps.comms.models import EscalationPolicy, Incident, RoutingRule, Target
from apps.core.gateway import invoke

OP = "comms.delete_target"


@pytest.fixture
def named(connectors):
    """oncall-sms named by two levels of one policy, one level of another, and a routing rule."""
    EscalationPolicy.objects.create(
        name="api-oncall",
        levels=[
            {"after_minutes": 0, "targets": ["ops-slack"]},
            {"after_minutes": 5, "targets": ["oncall-sms", "oncall-email"]},
            {"after_minutes": 10, "targets": ["oncall-sms"]},
        ],
    )
    EscalationPolicy.objects.create(name="db-oncall", levels=[{"after_minutes": 0, "targets": ["oncall-sms"]}])
    RoutingRule.objects.create(name="payments", services=["payments"], targets=["ops-slack", "oncall-sms"])
    RoutingRule.objects.create(name="api", services=["api"], targets=["ops-slack"])
    return Target.objects.get(name="oncall-sms")


def test_a_target_still_named_is_not_deleted_and_the_error_says_by_what(named, make_user, actor_of):
    admin = actor_of(make_user("admin"))
    with pytest.raises(CommsError) as refused:
        invoke(OP, admin, {"id": named.pk})
    assert refused.value.message == (
        "Target oncall-sms is still named by escalation policy api-oncall (levels 2, 3), escalation policy db-oncall "
        "(level 1), routing rule payments; remove it there first."
    )
    assert Target.objects.filter(pk=named.pk).exists()
    event = AuditEvent.objects.get(operation=OP)
    assert (event.outcome, event.target, event.error) == ("failed", str(named.pk), refused.value.message)

    # Nobody names ops-teams: it goes at once. Once the policies and the rule no longer name oncall-sms, so does it.
    invoke(OP, admin, {"id": Target.objects.get(name="ops-teams").pk})
    assert not Target.objects.filter(name="ops-teams").exists()
    EscalationPolicy.objects.filter(name="db-oncall").delete()
    EscalationPolicy.objects.filter(name="api-oncall").update(levels=[{"after_minutes": 0, "targets": ["ops-slack"]}])
    with pytest.raises(CommsError, match=r"still named by routing rule payments;"):
        invoke(OP, admin, {"id": named.pk})
    RoutingRule.objects.filter(name="payments").update(targets=["ops-slack"])
    assert invoke(OP, admin, {"id": named.pk}).result.name.startswith("oncall-sms")
    assert not Target.objects.filter(pk=named.pk).exists()
    outcomes = list(AuditEvent.objects.filter(operation=OP).order_by("seq").values_list("outcome", flat=True))
    assert outcomes == ["failed", "ok", "failed", "ok"]


def test_the_setup_page_shows_why_a_target_stays(named, client_as):
    response = client_as("admin").post(f"/comms/setup/targets/{named.pk}/delete/", follow=True)
    assert "Target oncall-sms is still named by escalation policy api-oncall (levels 2, 3)" in response.content.decode()
    assert Target.objects.filter(pk=named.pk).exists()
    assert AuditEvent.objects.get(operation=OP).outcome == "failed"


def test_an_unresolved_incident_routed_to_a_target_keeps_it(connectors, twilio, send_queued, make_user, actor_of):
    """An incident stores the targets its route named (Incident.targets) and tells them of its new alerts and its
    resolution: deleting one while an incident is open or acknowledged would make those fail (resolving it too).
    Refused, naming the incidents; once they are resolved, the target goes."""
    rule = RoutingRule.objects.create(name="db", services=["db"], targets=["oncall-sms"])
    operator, admin = actor_of(make_user("operator")), actor_of(make_user("admin"))
    alert = {"type": "DbDown", "severity": "critical", "title": "db down", "service": "db"}
    first = invoke("comms.send_alert", operator, alert).result.incident_id
    second = invoke("comms.send_alert", operator, {**alert, "type": "DbSlow", "title": "db slow"}).result.incident_id
    assert Incident.objects.get(pk=first).targets == ["oncall-sms"]
    invoke("comms.ack_incident", operator, {"incident_id": second})
    sms = Target.objects.get(name="oncall-sms")

    whose = "whose later updates (new alerts, the resolution) go to it"
    with pytest.raises(CommsError) as refused:
        invoke(OP, admin, {"id": sms.pk})
    assert refused.value.message == (
        f"Target oncall-sms is still named by routing rule db; remove it there first. It is still notified about "
        f"incident #{first} (open), incident #{second} (acknowledged), {whose}; resolve them first."
    )
    # The rule no longer names it (new alerts go elsewhere): the incidents already routed to it still do.
    RoutingRule.objects.filter(pk=rule.pk).update(targets=["ops-slack"])
    with pytest.raises(CommsError) as refused:
        invoke(OP, admin, {"id": sms.pk})
    assert refused.value.message == (
        f"Target oncall-sms is still notified about incident #{first} (open), incident #{second} (acknowledged), "
        f"{whose}; resolve them first."
    )
    invoke("comms.resolve_incident", operator, {"incident_id": second})
    with pytest.raises(CommsError) as refused:
        invoke(OP, admin, {"id": sms.pk})
    assert refused.value.message == f"Target oncall-sms is still notified about incident #{first} (open), {whose}; resolve it first."
    assert Target.objects.filter(pk=sms.pk).exists()

    # Resolving the last one tells oncall-sms (the target is still there to be told); a resolved incident keeps nothing.
    send_queued()
    twilio.reset()
    invoke("comms.resolve_incident", operator, {"incident_id": first})
    send_queued()
    told = [c["form"]["Body"] for c in twilio.calls("Messages.json")]
    assert len(told) == 1 and f"Resolved: incident #{first}" in told[0]
    assert invoke(OP, admin, {"id": sms.pk}).result.name.startswith("oncall-sms")
    assert not Target.objects.filter(pk=sms.pk).exists()
    events = AuditEvent.objects.filter(operation=OP).order_by("seq").values_list("outcome", "error")
    assert [outcome for outcome, _ in events] == ["failed", "failed", "failed", "ok"]
    assert all(f"incident #{first} (open)" in error for _, error in list(events)[:3])


def test_a_target_still_named_is_not_renamed_either(named, make_user, actor_of):
    """A rename leaves what names the target by its old name as a delete would: refused the same way, through the
    save operation (audited as failed, nothing changed); its other fields still change, and a target nobody names
    is renamed."""
    admin = actor_of(make_user("admin"))
    form = {"name": "pager-sms", "connector": named.connector_id, "recipient": named.recipient, "description": ""}
    with pytest.raises(CommsError, match=r"^Target oncall-sms cannot be renamed: it is still named by escalation policy api-oncall"):
        invoke("comms.save_target", admin, {"id": named.pk, "data": form})
    assert Target.objects.get(pk=named.pk).name == "oncall-sms"
    assert AuditEvent.objects.get(operation="comms.save_target").outcome == "failed"
    invoke("comms.save_target", admin, {"id": named.pk, "data": {**form, "name": "oncall-sms", "description": "the pager"}})
    assert Target.objects.get(pk=named.pk).description == "the pager"
    free = Target.objects.get(name="ops-teams")
    data = {"name": "ops-teams-2", "connector": free.connector_id, "recipient": free.recipient, "description": ""}
    invoke("comms.save_target", admin, {"id": free.pk, "data": data})
    assert Target.objects.get(pk=free.pk).name == "ops-teams-2"
