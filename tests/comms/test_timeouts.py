"""A peer that receives a message and never answers: the send's outcome is unknown. It is
never retried within the attempt (that would multiply the wait and could duplicate the
message); the delivery goes back to the worker's retry schedule with backoff, and the
delivery log says the outcome was unknown. Sends whose wire format carries an idempotency key
(the webhook's delivery id) repeat it, so the receiver drops the repeat."""

import pytest
from django.utils import timezone

from apps.comms import dispatch
from apps.comms.errors import SendTimedOut
from apps.comms.models import Delivery
from apps.core.gateway import invoke
from apps.core.resilience import breaker_states, forget_breaker


@pytest.fixture
def operator(make_user, actor_of):
    return actor_of(make_user("operator"))


@pytest.fixture(autouse=True)
def short_timeouts(settings):
    settings.COMMS_HTTP_TIMEOUT = 1  # slack-sdk takes whole seconds
    for name in ("slack", "hook"):
        forget_breaker(f"comms:{name}")


def post(actor, run_job, **params) -> Delivery:
    job = run_job(invoke("comms.post_message", actor, {"title": "db-1 restarts", "text": "at 22:00", **params}))
    delivery = Delivery.objects.get(pk=job.result["delivery"]["id"])
    assert job.result["delivery"]["outcome_unknown"] is delivery.outcome_unknown  # an agent is told too
    return delivery


def test_a_slack_send_that_timed_out_is_retried_by_the_worker_and_marked_unknown(operator, connectors, slack, run_job, client_as):
    slack.hang_next()
    started = timezone.now()
    delivery = post(operator, run_job, channel_type="slack", recipient="#ops")

    assert len(slack.calls("chat.postMessage")) == 1  # one request: no retry within the attempt
    assert delivery.status == Delivery.RETRYING and delivery.attempts == 1
    assert "did not answer in time (TimeoutError)" in delivery.error
    assert delivery.outcome_unknown and "may have received it; a retry may repeat it" in delivery.note
    assert delivery.next_attempt_at >= started + dispatch.timedelta(seconds=dispatch.BACKOFF[0])
    assert breaker_states()["comms:slack"]["failures"] == 1  # a timeout counts against the breaker

    assert dispatch.sweep(now=delivery.next_attempt_at) == 1
    delivery.refresh_from_db()
    assert delivery.status == Delivery.SENT and delivery.attempts == 2
    # Slack has no idempotency key: the message may now be there twice, and the log keeps saying so.
    assert len(slack.messages) == 2 and delivery.outcome_unknown and "may have received it" in delivery.note
    assert "outcome unknown" in client_as("viewer").get("/comms/deliveries/?status=sent").content.decode()


def test_a_webhook_that_timed_out_is_not_retried_inline_and_its_retry_is_dropped_as_a_repeat(operator, connectors, receiver, run_job):
    receiver.hang_next()
    delivery = post(operator, run_job, channel_type="webhook")

    assert len(receiver.calls("/hooks/ops")) == 1  # before: up to three tries, each waiting a full timeout
    assert delivery.status == Delivery.RETRYING and "did not answer in time (ReadTimeout)" in delivery.error
    assert "same X-Opsconsole-Delivery id" in delivery.note

    dispatch.sweep(now=delivery.next_attempt_at)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.SENT
    sent = receiver.calls("/hooks/ops")
    assert len(sent) == 2 and {r["headers"]["x-opsconsole-delivery"] for r in sent} == {str(delivery.pk)}
    assert len(receiver.accepted) == 1  # the receiver acted once


def test_a_status_update_in_a_request_waits_one_timeout_then_answers_503(operator, connectors, slack, run_job):
    """comms.update_status runs in the web request: one timeout, then a clear 503, never a second try."""
    post(operator, run_job, channel_type="slack", recipient="#ops", status_key="deploy:7")
    slack.hang_next()
    with pytest.raises(SendTimedOut, match=r"Slack connector slack did not answer in time") as raised:
        invoke("comms.update_status", operator, {"key": "deploy:7", "title": "done", "text": "ok"})
    assert raised.value.status_code == 503
    assert len(slack.calls("chat.update")) == 1
