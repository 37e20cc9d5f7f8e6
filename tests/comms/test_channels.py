"""Each channel end to end through the gateway and the job runner, against the
loopback peers: what arrives there, and what the delivery log says."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.comms import dispatch
from apps.comms.models import Delivery
from apps.core.gateway import invoke

from . import peers as p


@pytest.fixture
def operator(make_user, actor_of):
    return actor_of(make_user("operator"))


def post(actor, run_job, **params):
    job = run_job(invoke("comms.post_message", actor, {"title": "Disk almost full", **params}))
    assert job.status == "succeeded", job.error
    return job.result["delivery"]


def test_slack_message_with_blocks(operator, connectors, slack, run_job):
    delivery = post(operator, run_job, channel_type="slack", recipient="#ops", text="*db-1* at 91%")
    assert delivery["status"] == "sent" and delivery["external_id"].startswith("C001/1700000000.")
    (call,) = slack.calls("chat.postMessage")
    assert call["headers"]["authorization"] == f"Bearer {p.SLACK_TOKEN}"
    assert call["json"]["channel"] == "#ops"
    assert call["json"]["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": "Disk almost full", "emoji": True}}
    assert call["json"]["blocks"][1]["text"]["text"] == "*db-1* at 91%"
    assert AuditEvent.objects.filter(operation="comms.post_message", channel="worker", outcome="ok").exists()


def test_slack_429_is_retried_after_retry_after(operator, connectors, slack, run_job):
    slack.fail_next(429, {"ok": False, "error": "ratelimited"}, headers={"Retry-After": "1"})
    delivery = post(operator, run_job, channel_type="slack", recipient="#ops")
    assert delivery["status"] == "sent" and delivery["attempts"] == 1
    first, second = slack.calls("chat.postMessage")
    assert second["at"] - first["at"] >= 1.0  # it waited as long as Slack asked, not less
    assert "rate limited chat.postMessage (retry after 1 s)" in delivery["note"]


def test_a_long_retry_after_reschedules_the_delivery(operator, connectors, slack, run_job):
    slack.fail_next(429, {"ok": False, "error": "ratelimited"}, headers={"Retry-After": "120"})
    before = timezone.now()
    delivery = post(operator, run_job, channel_type="slack", recipient="#ops")
    row = Delivery.objects.get(pk=delivery["id"])
    assert row.status == "retrying" and "retry after 120 s" in row.error
    assert before + timedelta(seconds=119) < row.next_attempt_at < timezone.now() + timedelta(seconds=121)
    assert dispatch.sweep(now=timezone.now()) == 0  # not due yet
    assert dispatch.sweep(now=row.next_attempt_at) == 1
    row.refresh_from_db()
    assert row.status == "sent" and row.attempts == 2 and len(slack.calls("chat.postMessage")) == 2


def test_slack_error_is_a_failed_delivery_with_slacks_reason(operator, connectors, slack, run_job):
    delivery = post(operator, run_job, channel_type="slack", recipient="#nope")
    assert delivery["status"] == "failed"
    assert delivery["error"] == "Slack refused chat.postMessage: channel_not_found"
    assert Delivery.objects.get(pk=delivery["id"]).next_attempt_at is None  # a person must fix it; no retry


def test_teams_adaptive_card(operator, connectors, receiver, run_job):
    delivery = post(operator, run_job, channel_type="teams", text="Replica lag 30 s")
    assert delivery["status"] == "sent"
    card = receiver.accepted[0]["teams"]
    assert card["body"][0]["text"] == "Disk almost full" and card["body"][1]["text"] == "Replica lag 30 s"


def test_email_text_and_html_through_real_smtp_with_auth(operator, connectors, smtp, run_job):
    delivery = post(operator, run_job, channel_type="email", recipient="oncall@example.test", text="Line one\nLine two")
    assert delivery["status"] == "sent" and delivery["external_id"].startswith("<")
    (envelope,) = smtp.messages
    assert smtp.logins == [p.SMTP_USER]
    assert envelope.mail_from == "console@example.test" and envelope.rcpt_tos == ["oncall@example.test"]
    body = envelope.content.decode()
    assert "Subject: Disk almost full" in body and "multipart/alternative" in body
    assert "text/plain" in body and "text/html" in body and "<h2>Disk almost full</h2>" in body


def test_sms_in_twilios_shape(operator, connectors, twilio, run_job):
    delivery = post(operator, run_job, channel_type="sms", recipient="+15550009999", text="db-1 down")
    assert delivery["status"] == "sent" and delivery["external_id"].startswith("SM")
    (call,) = twilio.calls("Messages.json")
    assert call["form"] == {"To": "+15550009999", "From": "+15550000001", "Body": "Disk almost full: db-1 down"}


def test_sms_refused_number_fails_with_twilios_message(operator, connectors, twilio, run_job):
    delivery = post(operator, run_job, channel_type="sms", recipient="5550009999")
    assert delivery["status"] == "failed"
    assert "HTTP 400 The 'To' number 5550009999 is not a valid phone number." in delivery["error"]


def test_webhook_signed_and_verified_by_the_receiver(operator, connectors, receiver, run_job):
    delivery = post(operator, run_job, channel_type="webhook", text="hello")
    assert delivery["status"] == "sent" and delivery["external_id"] == "HTTP 200"
    (accepted,) = receiver.accepted
    assert accepted["delivery"] == delivery["id"]
    assert accepted["webhook"]["title"] == "Disk almost full" and accepted["webhook"]["id"] == delivery["id"]


def test_webhook_retried_with_backoff_after_a_server_error(operator, connectors, receiver, run_job):
    receiver.fail_next(502, {"error": "bad gateway"})
    delivery = post(operator, run_job, channel_type="webhook")
    assert delivery["status"] == "sent"
    assert len(receiver.calls("/hooks/ops")) == 2 and len(receiver.accepted) == 1
    assert "HTTP 502" in delivery["note"] and "retried after 0.5 s" in delivery["note"]


def test_webhook_with_a_wrong_secret_is_refused_by_the_receiver(operator, connectors, receiver, run_job):
    connectors["webhook"].secret = "not-the-shared-secret"
    connectors["webhook"].save()
    delivery = post(operator, run_job, channel_type="webhook")
    assert delivery["status"] == "failed" and "HTTP 401 bad signature" in delivery["error"]
    assert receiver.accepted == []


def test_create_and_list_channels_through_cursors(operator, connectors, slack):
    created = invoke("comms.create_channel", operator, {"name": "inc-42"}).result
    assert created.name == "inc-42" and slack.find("#inc-42")["id"] == created.id
    listed = invoke("comms.list_channels", operator, {}).result
    assert [c.name for c in listed.channels] == ["ops", "deploys", "general", "random", "incidents", "inc-42"]
    pages = slack.calls("conversations.list")
    args = [{**x["query"], **x.get("form", {})} for x in pages]
    assert len(pages) == 3 and "cursor" not in args[0] and args[1]["cursor"] != args[2]["cursor"]
    limited = invoke("comms.list_channels", operator, {"limit": 3}).result
    assert limited.count == 3


def test_create_channel_refused_by_slack(operator, connectors, slack):
    from apps.comms.errors import CommsError

    with pytest.raises(CommsError, match="name_taken"):
        invoke("comms.create_channel", operator, {"name": "ops"})
    assert AuditEvent.objects.filter(operation="comms.create_channel", outcome="failed", error__contains="name_taken").exists()


def test_update_status_edits_the_posted_message_in_place(operator, connectors, slack, run_job):
    delivery = post(operator, run_job, channel_type="slack", recipient="#ops", status_key="db-maintenance", text="starting")
    channel, ts = delivery["external_id"].split("/")
    result = invoke("comms.update_status", operator, {"key": "db-maintenance", "title": "DB maintenance", "text": "done"}).result
    assert result.updated == [f"{channel}/{ts}"]
    assert slack.messages[(channel, ts)]["text"] == "DB maintenance\ndone"
    assert len(slack.calls("chat.postMessage")) == 1 and len(slack.calls("chat.update")) == 1
