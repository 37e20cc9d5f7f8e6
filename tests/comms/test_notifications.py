"""Fan-out notifications, routing rules and the "who gets this?" preview, a
channel that is down, and users' console notifications delivered through comms."""

import pytest
from django.utils import timezone

from apps.approvals import services as approvals
from apps.comms import dispatch
from apps.comms.errors import CommsError
from apps.comms.models import Connector, Delivery, DeliveryPreference, RoutingRule, Target
from apps.core.gateway import invoke
from tests.support.processes import free_port

ALL = ["ops-slack", "ops-teams", "oncall-email", "oncall-sms", "ops-hook"]


@pytest.fixture
def operator(make_user, actor_of):
    return actor_of(make_user("operator"))


def notify(actor, run_job, **params):
    job = run_job(invoke("comms.send_notification", actor, {"title": "Maintenance at 22:00", "message": "db-1 restarts", **params}))
    assert job.status == "succeeded", job.error
    return job


def test_one_message_to_every_channel(operator, connectors, slack, receiver, smtp, twilio, run_job):
    job = notify(operator, run_job, channels=ALL, priority="high", metadata={"service": "db"})
    statuses = {d["target"]: d["status"] for d in job.result["deliveries"]}
    assert statuses == dict.fromkeys(ALL, "sent")
    assert len(slack.calls("chat.postMessage")) == 1 and len(smtp.messages) == 1 and len(twilio.calls()) == 1
    kinds = sorted(next(iter(a)) for a in receiver.accepted)
    assert kinds == ["teams", "webhook"]
    assert [line.text for line in job.log_lines.all()] == [f"{t}: sent" for t in ALL]


def test_a_channel_down_fails_alone_and_is_not_lost(operator, connectors, slack, receiver, smtp, twilio, run_job):
    down = Connector.objects.create(name="slack-down", kind="slack", url=f"http://127.0.0.1:{free_port()}/api/", secret="xoxb-x")
    Target.objects.create(name="down-slack", connector=down, recipient="#ops")
    job = notify(operator, run_job, channels=["down-slack", *ALL])
    result = {d["target"]: d for d in job.result["deliveries"]}
    assert result["down-slack"]["status"] == "retrying"
    assert "did not answer" in result["down-slack"]["error"] and "Connection refused" in result["down-slack"]["error"]
    assert all(result[t]["status"] == "sent" for t in ALL)
    assert job.log_lines.filter(level="error", text__startswith="down-slack: retrying").exists()

    # Nothing lost: the delivery keeps its message; when the peer is back the sweeper sends it.
    row = Delivery.objects.get(pk=result["down-slack"]["id"])
    assert row.message["title"] == "Maintenance at 22:00"
    down.url = slack.url + "/api/"
    down.secret = connectors["slack"].secret
    down.save()
    assert dispatch.sweep(now=timezone.now()) == 0  # its next attempt is not due yet
    assert dispatch.sweep(now=row.next_attempt_at) == 1
    row.refresh_from_db()
    assert row.status == "sent" and row.attempts == 2 and row.error == ""


def test_gives_up_after_the_maximum_attempts(operator, connectors, settings, run_job):
    settings.COMMS_MAX_ATTEMPTS = 2
    down = Connector.objects.create(name="down", kind="webhook", url=f"http://127.0.0.1:{free_port()}/hook", secret="s")
    Target.objects.create(name="down-hook", connector=down)
    (delivery,) = notify(operator, run_job, channels=["down-hook"]).result["deliveries"]
    row = Delivery.objects.get(pk=delivery["id"])
    dispatch.sweep(now=row.next_attempt_at)
    row.refresh_from_db()
    assert row.status == "failed" and row.attempts == 2 and row.next_attempt_at is None
    # A person can send it again once the connector is fixed.
    resent = invoke("comms.resend_delivery", operator, {"delivery_id": str(row.pk)}).result
    assert resent.status == "queued" and resent.attempts == 0


def test_routing_rules_pick_targets_first_match_wins(operator, connectors, run_job):
    RoutingRule.objects.create(
        name="db urgent", position=10, priorities=["urgent"], services=["db"], targets=["oncall-sms"], continue_matching=True
    )
    RoutingRule.objects.create(name="db", position=20, services=["db"], targets=["ops-slack"])
    RoutingRule.objects.create(name="never reached", position=30, services=["db"], targets=["ops-teams"])
    RoutingRule.objects.create(name="default", is_default=True, targets=["ops-hook"])

    urgent = notify(operator, run_job, priority="urgent", metadata={"service": "db"}).result
    assert urgent["routed_by"] == ["db urgent", "db"] and [d["target"] for d in urgent["deliveries"]] == ["oncall-sms", "ops-slack"]
    normal = notify(operator, run_job, metadata={"service": "db"}).result
    assert normal["routed_by"] == ["db"]
    other = notify(operator, run_job, metadata={"service": "web"}).result
    assert other["routed_by"] == ["default"] and other["deliveries"][0]["target"] == "ops-hook"


def test_no_route_no_channels_is_an_error(operator, connectors, run_job):
    job = run_job(invoke("comms.send_notification", operator, {"title": "x"}))
    assert job.status == "failed" and "no routing rule" in job.error


def test_preview_who_gets_this(operator, connectors):
    RoutingRule.objects.create(
        name="critical api",
        severities=["critical"],
        services=["api"],
        labels={"team": "payments"},
        targets=["oncall-sms", "ops-slack"],
        group_by=["service"],
    )
    RoutingRule.objects.create(name="default", is_default=True, targets=["ops-hook"])
    hit = invoke("comms.preview_route", operator, {"severity": "critical", "service": "api", "labels": {"team": "payments"}}).result
    assert hit.rules == ["critical api"] and hit.targets == ["oncall-sms (sms +15550001234)", "ops-slack (slack #ops)"]
    assert hit.group_by == ["service"]
    miss = invoke("comms.preview_route", operator, {"severity": "warning", "service": "api", "labels": {"team": "payments"}}).result
    assert miss.rules == ["default"] and miss.targets == ["ops-hook (webhook)"]


def test_post_message_needs_an_unambiguous_connector(operator, connectors, run_job):
    Connector.objects.create(name="slack-2", kind="slack", secret="xoxb-2")
    job = run_job(invoke("comms.post_message", operator, {"channel_type": "slack", "recipient": "#ops", "title": "hi"}))
    assert job.status == "failed" and "several enabled slack connector" in job.error
    with pytest.raises(CommsError):
        invoke("comms.list_channels", operator, {"connector": "nope"})


def test_approval_decision_is_also_emailed_to_a_user_who_asked(make_user, actor_of, connectors, smtp, receiver, send_queued):
    requester = make_user("operator", email="requester@example.test")
    DeliveryPreference.objects.create(user=requester, connector=connectors["email"], recipient="requester@example.test")
    RoutingRule.objects.create(name="notifications to the hook", labels={"type": "notification"}, targets=["ops-hook"])
    RoutingRule.objects.create(name="default", is_default=True, targets=["ops-slack"])
    approval = invoke("core.purge_jobs", actor_of(requester), {"older_than_days": 30}).approval
    approvals.vote(approval.pk, actor_of(make_user("approver")), "reject", "not now")

    deliveries = send_queued()
    assert [(d.kind, d.origin, d.status) for d in deliveries] == [("email", "notification", "sent"), ("webhook", "notification", "sent")]
    (envelope,) = smtp.messages
    assert envelope.rcpt_tos == ["requester@example.test"]
    assert f"rejected your request #{approval.pk}" in envelope.content.decode()
    assert receiver.accepted[0]["webhook"]["data"] == {"user": requester.username}
    assert receiver.accepted[0]["webhook"]["link"].endswith(f"/approvals/{approval.pk}/")


def test_notifications_without_preference_or_rule_stay_in_the_console(make_user, connectors):
    from apps.core.notify import notify as console_notify

    RoutingRule.objects.create(name="default", is_default=True, targets=["ops-slack"])  # the default route is for alerts only
    console_notify(make_user("viewer"), "Your job finished", "/jobs/")
    assert not Delivery.objects.exists()
