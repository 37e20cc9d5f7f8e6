"""With a real Celery worker: the escalation schedule lives in the database, so
a worker that was not running when an escalation fell due still performs it at
the next beat tick; and a notification job runs end to end."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.comms import incidents, tasks
from apps.comms.incidents import AlertIn
from apps.comms.models import Delivery, EscalationPolicy, Incident, RoutingRule
from apps.core.gateway import invoke
from apps.core.models import Job


def wait_for(check, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.django_db(transaction=True)
def test_a_due_escalation_is_picked_up_from_the_database_by_the_tick(connectors, twilio, celery_worker):
    policy = EscalationPolicy.objects.create(
        name="p", levels=[{"after_minutes": 0, "targets": ["ops-slack"]}, {"after_minutes": 5, "targets": ["oncall-sms"]}]
    )
    RoutingRule.objects.create(name="db", services=["db"], targets=[], escalation_policy=policy)
    opened = incidents.receive_alert(AlertIn(type="DbDown", severity="critical", title="db down", service="db"), "t").incident
    # The escalation fell due while no worker was watching: only the row says so.
    Incident.objects.filter(pk=opened.pk).update(next_escalation_at=timezone.now() - timedelta(minutes=1))
    tasks.tick.delay()
    assert wait_for(lambda: Incident.objects.get(pk=opened.pk).escalation_level == 2), celery_worker.tail()
    assert wait_for(lambda: Delivery.objects.filter(incident=opened, kind="sms", status="sent").exists()), celery_worker.tail()
    assert twilio.calls()[0]["form"]["Body"].startswith("🔴 [CRITICAL] Escalated (level 2)")


@pytest.mark.django_db(transaction=True)
def test_send_notification_job_on_the_worker(make_user, actor_of, connectors, slack, celery_worker):
    outcome = invoke("comms.send_notification", actor_of(make_user("operator")), {"title": "from the worker", "channels": ["ops-slack"]})
    assert wait_for(lambda: Job.objects.get(pk=outcome.job.pk).finished), celery_worker.tail()
    job = Job.objects.get(pk=outcome.job.pk)
    assert job.status == "succeeded" and job.result["deliveries"][0]["status"] == "sent"
    assert slack.calls("chat.postMessage")[0]["json"]["text"] == "from the worker"
