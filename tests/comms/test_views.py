"""The comms pages: incidents, an incident, the delivery log, the preview, setup
(admins only) and a user's own delivery preference."""

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.comms import incidents
from apps.comms.incidents import AlertIn
from apps.comms.models import AllowedNetwork, Delivery, DeliveryPreference, EscalationPolicy, Incident, InhibitRule, RoutingRule


@pytest.fixture
def incident(connectors):
    RoutingRule.objects.create(name="default", is_default=True, targets=["ops-slack"])
    return incidents.receive_alert(AlertIn(type="DiskFull", severity="critical", title="db-1 disk 97%", service="db"), "tester").incident


def test_incidents_list_and_detail(client_as, incident, django_assert_max_num_queries):
    client = client_as("viewer")
    with django_assert_max_num_queries(12):
        page = client.get("/comms/")
    html = page.content.decode()
    assert page.status_code == 200 and "db-1 disk 97%" in html and 'ws-connect="/ws/live/incidents/"' in html
    detail = client.get(f"/comms/incidents/{incident.pk}/").content.decode()
    assert "Opened by alert DiskFull" in detail and f'ws-connect="/ws/live/incident.{incident.pk}/"' in detail
    assert "Acknowledge" not in detail  # a viewer may look, not respond
    assert "No resolved incidents" in client.get("/comms/?status=resolved").content.decode()


def test_acknowledge_from_the_page(client_as, incident):
    client = client_as("operator")
    assert "Acknowledge" in client.get(f"/comms/incidents/{incident.pk}/").content.decode()
    response = client.post(f"/comms/incidents/{incident.pk}/ack/", {"comment": "mine"})
    assert response.status_code == 302
    assert Incident.objects.get(pk=incident.pk).status == "acknowledged"
    again = client.post(f"/comms/incidents/{incident.pk}/ack/", follow=True)
    assert "already acknowledged" in again.content.decode()


def test_viewer_cannot_act_on_an_incident(client_as, incident):
    response = client_as("viewer").post(f"/comms/incidents/{incident.pk}/resolve/", follow=True)
    assert "may not run comms.resolve_incident" in response.content.decode()
    assert Incident.objects.get(pk=incident.pk).status == "open"


def test_delivery_log_filters(client_as, incident, send_queued):
    send_queued()
    client = client_as("viewer")
    html = client.get("/comms/deliveries/?status=sent").content.decode()
    assert "db-1 disk 97%" in html and "#ops" in html
    assert "No deliveries matching the filter" in client.get("/comms/deliveries/?status=failed").content.decode()


def test_preview_page(client_as, incident):
    html = client_as("viewer").get("/comms/preview/", {"severity": "critical", "service": "db", "labels": "{}"}).content.decode()
    assert "ops-slack (slack #ops)" in html and "default" in html
    bad = client_as("viewer").get("/comms/preview/", {"labels": "{not json"}).content.decode()
    assert "Labels must be a JSON object" in bad


def test_setup_is_for_admins(client_as, connectors):
    assert client_as("operator").get("/comms/setup/").status_code == 403
    client = client_as("admin")
    for section in ("connectors", "targets", "rules", "inhibitions", "policies", "networks"):
        assert client.get(f"/comms/setup/{section}/").status_code == 200


def test_admin_adds_a_rule_and_a_network(client_as, connectors):
    client = client_as("admin")
    response = client.post("/comms/setup/rules/", {"name": "db", "position": "10", "severities": ["critical", "warning"], "services": "db",
                                                    "labels-key-0": "team", "labels-value-0": "dba", "labels-key-1": "",
                                                    "targets": "ops-slack, oncall-sms", "group_by": "service",
                                                    "group_wait_seconds": "0", "enabled": "on"})  # fmt: skip
    assert response.status_code == 302
    rule = RoutingRule.objects.get(name="db")
    assert rule.severities == ["critical", "warning"] and rule.targets == ["ops-slack", "oncall-sms"] and rule.labels == {"team": "dba"}
    edit = client.get(f"/comms/setup/rules/{rule.pk}/").content.decode()  # prefilled: ticked boxes and label rows
    assert 'value="critical" id="id_severities_2" checked' in edit and 'name="labels-key-0" value="team"' in edit
    assert "Defined: deploys-slack, oncall-email, oncall-sms, ops-hook, ops-slack, ops-teams." in edit  # what targets exist
    bad = client.post("/comms/setup/rules/", {"name": "x", "position": "1", "targets": "nope", "group_wait_seconds": "0"})
    assert "No target named nope" in bad.content.decode()
    client.post("/comms/setup/networks/", {"cidr": "10.9.0.1/16", "note": "internal hooks"})
    assert AllowedNetwork.objects.filter(cidr="10.9.0.0/16").exists()


def test_my_delivery_preference(client_as, connectors):
    client = client_as("viewer")
    response = client.post("/comms/preference/", {"connector": connectors["email"].pk, "recipient": "me@example.test", "enabled": "on"})
    assert response.status_code == 302
    assert DeliveryPreference.objects.get(user=client.user).recipient == "me@example.test"
    client.post("/comms/preference/", {"delete": "1"})
    assert not DeliveryPreference.objects.exists()


def test_resend_from_the_log(client_as, connectors):
    row = Delivery.objects.create(connector=connectors["slack"], kind="slack", recipient="#ops", title="t", message={"title": "t"},
                                  origin="test", status="failed", attempts=5, created_at=timezone.now())  # fmt: skip
    client = client_as("operator")
    assert "Send again" in client.get("/comms/deliveries/").content.decode()
    client.post(f"/comms/deliveries/{row.pk}/resend/")
    row.refresh_from_db()
    assert row.status == "queued" and row.attempts == 0


def levels_rows(*levels) -> dict:
    """The escalation levels' rows as the form posts them."""
    return {f"levels-{key}-{i}": str(value) for i, (minutes, targets) in enumerate(levels) for key, value in
            (("after_minutes", minutes), ("targets", targets))}  # fmt: skip


def test_admin_adds_an_escalation_policy_through_the_form(client_as, connectors):
    client = client_as("admin")
    levels = levels_rows((0, "ops-slack"), (15, "oncall-sms, ops-slack"), ("", ""))  # an empty row is dropped
    response = client.post("/comms/setup/policies/", {"name": "db-oncall", "description": "database pager", **levels})
    assert response.status_code == 302
    policy = EscalationPolicy.objects.get(name="db-oncall")
    assert policy.levels == [{"after_minutes": 0, "targets": ["ops-slack"]}, {"after_minutes": 15, "targets": ["oncall-sms", "ops-slack"]}]
    event = AuditEvent.objects.get(operation="comms.save_escalation_policy")
    assert (event.outcome, event.channel, event.target, event.actor) == ("ok", "web", "db-oncall", client.user.username)
    assert "db-oncall" in client.get("/comms/setup/policies/").content.decode()

    edit = client.get(f"/comms/setup/policies/{policy.pk}/").content.decode()
    assert 'name="levels-after_minutes-1" value="15"' in edit and 'value="oncall-sms, ops-slack"' in edit  # rows, prefilled

    for levels, error in [
        (levels_rows((0, "nope")), "No target named nope"),
        (levels_rows((-5, "ops-slack")), "Level 1: after minutes must be a whole number"),
        (levels_rows(("", "")), "This field is required"),  # no level at all
    ]:
        bad = client.post("/comms/setup/policies/", {"name": "broken", **levels})
        assert bad.status_code == 422 and error in bad.content.decode()
    assert not EscalationPolicy.objects.filter(name="broken").exists()
    assert AuditEvent.objects.filter(operation="comms.save_escalation_policy").count() == 1


def test_admin_adds_an_inhibition_rule_through_the_form(client_as, connectors):
    client = client_as("admin")
    form = {"name": "critical mutes warning", "enabled": "on", "source_match-key-0": "severity", "source_match-value-0": "critical",
            "target_match-key-0": "severity", "target_match-value-0": "warning", "equal": "service, cluster"}  # fmt: skip
    response = client.post("/comms/setup/inhibitions/", form)
    assert response.status_code == 302
    rule = InhibitRule.objects.get(name="critical mutes warning")
    assert (rule.enabled, rule.source_match, rule.target_match, rule.equal) == (
        True, {"severity": "critical"}, {"severity": "warning"}, ["service", "cluster"]
    )  # fmt: skip
    event = AuditEvent.objects.get(operation="comms.save_inhibit_rule")
    assert (event.outcome, event.target) == ("ok", "critical mutes warning")

    bad = client.post("/comms/setup/inhibitions/", {"name": "broken", "source_match-key-0": "", "source_match-value-0": "critical"})
    assert bad.status_code == 422 and "Every value needs a key." in bad.content.decode()
    assert "This field is required" in bad.content.decode()  # the mute side has no label
    assert not InhibitRule.objects.filter(name="broken").exists()
    assert AuditEvent.objects.filter(operation="comms.save_inhibit_rule").count() == 1


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_non_admins_may_not_add_policies_or_inhibitions(client_as, connectors, role):
    client = client_as(role)
    policy = client.post("/comms/setup/policies/", {"name": "sneaky", **levels_rows((0, "ops-slack"))})
    inhibition = client.post("/comms/setup/inhibitions/", {"name": "sneaky", "source_match": "{}", "target_match": "{}"})
    assert (policy.status_code, inhibition.status_code) == (403, 403)
    assert not EscalationPolicy.objects.exists() and not InhibitRule.objects.exists()
    assert not AuditEvent.objects.filter(operation__in=["comms.save_escalation_policy", "comms.save_inhibit_rule"]).exists()
