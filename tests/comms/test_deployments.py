"""comms.broadcast_deployment: one Slack status message per deployment, edited
in place at each report; other channels hear the start and the result only."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.comms.models import RoutingRule, StatusMessage
from apps.core.gateway import invoke


@pytest.fixture
def deployer(make_user, actor_of):
    return actor_of(make_user("operator"))


@pytest.fixture
def deploy_route(connectors):
    return RoutingRule.objects.create(name="deployments", labels={"type": "deployment"}, targets=["deploys-slack", "oncall-email"])


def report(actor, run_job, **fields):
    params = {"deployment_id": "42", "url": "http://console/deployments/42/", "service": "api", "environment": "prod",
              "revision": "v1.8.0", "strategy": "canary", **fields}  # fmt: skip
    job = run_job(invoke("comms.broadcast_deployment", actor, params))
    assert job.status == "succeeded", job.error
    return job.result


def test_start_progress_and_result(deployer, deploy_route, slack, smtp, run_job):
    t0 = timezone.now()
    started = report(deployer, run_job, status="started", step="canary 0%", progress=0, reported_at=t0.isoformat())
    assert started["posted"] == 1 and started["updated"] == 0
    assert [d["kind"] for d in started["deliveries"]] == ["slack", "email"]
    (status,) = StatusMessage.objects.filter(key="deployment:42")
    assert status.recipient == "#deploys" and status.channel == "C002"

    progress = report(deployer, run_job, status="progress", step="canary 25%: error rate 0.1%", progress=25,
                      reported_at=(t0 + timedelta(seconds=30)).isoformat())  # fmt: skip
    assert progress["updated"] == 1 and progress["deliveries"] == []  # no email for progress
    message = slack.messages[("C002", status.ts)]
    assert "canary 25%: error rate 0.1%" in message["text"]
    assert any("▓▓░░░░░░░░ 25%" in f["text"] for b in message["blocks"] if b["type"] == "section" and "fields" in b for f in b["fields"])

    # A report that arrives late (jobs can run out of order) is skipped, not shown.
    stale = report(
        deployer, run_job, status="progress", step="canary 10%", progress=10, reported_at=(t0 + timedelta(seconds=10)).isoformat()
    )
    assert stale["skipped"] and "canary 25%" in slack.messages[("C002", status.ts)]["text"]

    done = report(
        deployer, run_job, status="succeeded", step="100% on v1.8.0", progress=100, reported_at=(t0 + timedelta(minutes=5)).isoformat()
    )
    assert done["updated"] == 1 and [d["kind"] for d in done["deliveries"]] == ["email"]
    assert len(slack.calls("chat.postMessage")) == 1 and len(slack.calls("chat.update")) == 2
    assert "Deployment of api to prod: succeeded" in slack.messages[("C002", status.ts)]["text"]
    subjects = [m.content.decode() for m in smtp.messages]
    assert len(subjects) == 2 and "Subject: [INFO] Deployment of api to prod: started" in subjects[0]
    assert "Subject: [INFO] Deployment of api to prod: succeeded" in subjects[1]


def test_failed_deployment_is_critical_and_explicit_targets_win(deployer, deploy_route, slack, twilio, run_job):
    result = report(deployer, run_job, status="failed", step="canary 50%: error rate 7%", targets=["ops-slack", "oncall-sms"])
    assert [d["target"] for d in result["deliveries"]] == ["ops-slack", "oncall-sms"]
    assert twilio.calls()[0]["form"]["Body"].startswith("🔴 [CRITICAL] Deployment of api to prod: failed")


def test_update_status_without_a_posted_message_is_an_error(deployer, connectors):
    from apps.comms.errors import CommsError

    with pytest.raises(CommsError, match="No status message"):
        invoke("comms.update_status", deployer, {"key": "deployment:nope", "title": "x"})
