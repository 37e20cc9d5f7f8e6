"""Failures roll back by themselves (and say why), people roll back or abort:
the previous revision keeps answering, without a failed request where the
strategy promises it."""

import pytest

from apps.core import operations
from apps.core.gateway import invoke
from apps.infrastructure.models import Deployment
from tests.support.waiting import wait_for

from .conftest import HTTPD, Poller, deploy, endpoint, run_resume_job, running_revisions, version_at, versions, web_service

pytestmark = pytest.mark.peer
QUICK_CHECK = {"kind": "http", "path": "/version", "interval_seconds": 0.1, "healthy_within_seconds": 2}


@pytest.mark.parametrize("strategy", ["blue_green", "canary"])
def test_unhealthy_revision_rolls_back_with_no_failed_request(strategy, operator, environment, images, podman):
    web_service(operator, environment, images, replicas=2, strategy=strategy, healthcheck=QUICK_CHECK,
                options={"steps": [{"set_weight": 50}, {"set_weight": 100}]})  # fmt: skip
    deploy(operator, environment)
    address = endpoint(operator, environment)
    with Poller(address) as poller:
        broken = deploy(operator, environment, image=images.web["broken"])
    assert broken.status == "rolled back"
    assert "was not healthy within 2 s: GET /version answered 404, expected 200" in broken.reason
    assert "r1 serves again (2 replica(s))" in broken.reason
    assert poller.failures == []
    assert set(poller.seen) == {"v1"}
    assert versions(address, 10) == {"v1": 10}
    assert running_revisions(podman, environment) == ["1", "1"]
    assert broken.service.current_revision.number == 1
    assert broken.job.status == "failed" and "rolled back" in broken.job.error


@pytest.mark.parametrize("strategy", ["rolling", "recreate"])
def test_unhealthy_revision_rolls_back_with_rolling_and_recreate(strategy, operator, environment, images, podman):
    web_service(operator, environment, images, replicas=2, strategy=strategy, healthcheck=QUICK_CHECK)
    deploy(operator, environment)
    with Poller(endpoint(operator, environment)) as poller:
        broken = deploy(operator, environment, image=images.web["broken"])
    assert broken.status == "rolled back", broken.reason
    if strategy == "rolling":  # the old replicas serve until a new one is healthy; recreate stops them first
        assert poller.failures == [] and set(poller.seen) == {"v1"}
    assert "was not healthy within 2 s: GET /version answered 404, expected 200" in broken.reason
    assert versions(endpoint(operator, environment), 10) == {"v1": 10}
    assert running_revisions(podman, environment) == ["1", "1"]
    assert broken.service.current_revision.number == 1


def test_failed_analysis_rolls_the_canary_back(operator, environment, images, podman):
    steps = [{"set_weight": 50}, {"analysis": {"count": 5, "interval_seconds": 0.2, "failure_limit": 1}}, {"set_weight": 100}]
    web_service(operator, environment, images, replicas=2, strategy="canary", options={"steps": steps})
    deploy(operator, environment)
    # The next revision passes its first two health probes, then fails every one after.
    flaky_check = {"kind": "http", "path": "/cgi-bin/health", "interval_seconds": 0.1, "healthy_within_seconds": 8}
    web_service(operator, environment, images, version="flaky", replicas=2, strategy="canary", options={"steps": steps},
                healthcheck=flaky_check)  # fmt: skip
    canary = deploy(operator, environment)
    assert canary.status == "rolled back", canary.reason
    assert canary.reason.startswith("analysis failed: health failed 2 time(s), more than the failure limit 1")
    log = list(canary.log_lines.values_list("text", flat=True))
    measurements = [line for line in log if line.startswith("measurement ")]
    assert measurements == [
        "measurement 1/5 — health: successful (result=[1])",
        "measurement 2/5 — health: failed (result=[0])",
        "measurement 3/5 — health: failed (result=[0])",
    ]
    assert versions(endpoint(operator, environment), 10) == {"v1": 10}
    assert running_revisions(podman, environment) == ["1", "1"]


def test_prometheus_analysis_without_the_monitoring_app_fails_the_canary(operator, environment, images, monkeypatch):
    monkeypatch.delitem(operations._registry, "monitoring.query", raising=False)  # the monitoring app is not installed
    analysis = {"source": "main", "query": "sum(rate(http_errors_total[1m]))", "failure_condition": "result[0] > 0.05", "count": 2}
    steps = [{"set_weight": 50}, {"analysis": analysis}, {"set_weight": 100}]
    web_service(operator, environment, images, replicas=2, strategy="canary", options={"steps": steps})
    deploy(operator, environment)
    canary = deploy(operator, environment, image=images.web["v2"])
    assert canary.status == "rolled back"
    assert canary.reason.startswith("monitoring app not installed: the operation monitoring.query is not registered")
    assert versions(endpoint(operator, environment), 6) == {"v1": 6}


def test_rollback_to_an_earlier_revision_and_to_the_previous_one(operator, environment, images):
    web_service(operator, environment, images, replicas=1, strategy="rolling")
    for version in ("v1", "v2", "v3"):
        assert deploy(operator, environment, image=images.web[version]).status == "succeeded"
    address = endpoint(operator, environment)
    assert version_at(address) == "v3"

    back = deploy(operator, environment, operation="infrastructure.rollback", revision=1)
    assert (back.status, back.kind, back.revision.number, back.previous_revision.number) == ("succeeded", "rollback", 1, 3)
    assert version_at(address) == "v1"
    assert back.service.revisions.count() == 3, "a rollback deploys a recorded revision, it makes no new one"

    again = deploy(operator, environment, operation="infrastructure.rollback")
    assert (again.status, again.revision.number) == ("succeeded", 3), "no revision given: the last one that succeeded before"
    assert version_at(address) == "v3"
    revisions = invoke("infrastructure.revisions", operator, {"environment": environment.name, "service": "web"}).result.revisions
    assert [(r.number, r.current, r.spec["image"]) for r in revisions] == [
        (3, True, images.web["v3"]), (2, False, images.web["v2"]), (1, False, images.web["v1"]),
    ]  # fmt: skip


def test_abort_a_paused_canary(operator, environment, images, podman):
    steps = [{"set_weight": 50}, {"pause": {}}, {"set_weight": 100}]
    web_service(operator, environment, images, replicas=2, strategy="canary", options={"steps": steps})
    deploy(operator, environment)
    address = endpoint(operator, environment)
    with Poller(address) as poller:
        canary = deploy(operator, environment, image=images.web["v2"])
        assert canary.status == "paused"
        assert set(versions(address, 20)) == {"v1", "v2"}
        aborted = invoke("infrastructure.abort", operator, {"deployment": canary.pk, "reason": "error rate up"}).result
        assert aborted.status == "queued"
        run_resume_job()
    canary.refresh_from_db()
    assert canary.status == "aborted"
    assert canary.reason.startswith(f"aborted by {operator.name}: error rate up; r1 serves again")
    assert poller.failures == []
    assert versions(address, 10) == {"v1": 10}
    assert running_revisions(podman, environment) == ["1", "1"]
    with pytest.raises(Exception, match="already aborted"):
        invoke("infrastructure.abort", operator, {"deployment": canary.pk})


@pytest.mark.django_db(transaction=True)
def test_abort_while_running_on_a_worker(operator, environment, images, podman, celery_worker):
    """Abort reaches a deployment that runs on a real worker: mid-canary, and during blue-green's keep-old window (instant rollback)."""
    steps = [{"set_weight": 50}, {"pause": {"seconds": 120}}, {"set_weight": 100}]
    web_service(operator, environment, images, replicas=2, strategy="canary", options={"steps": steps})
    first = invoke("infrastructure.deploy", operator, {"environment": environment.name, "service": "web"}).job
    wait_for(lambda: Deployment.objects.get(job=first).finished, what="first deploy")
    address = endpoint(operator, environment)

    job = invoke("infrastructure.deploy", operator, {"environment": environment.name, "service": "web", "image": images.web["v2"]}).job
    canary = Deployment.objects.get(job=job)
    wait_for(lambda: "pause 120 s" in Deployment.objects.get(pk=canary.pk).step_label, what="the timed pause")
    assert set(versions(address, 10)) == {"v1", "v2"}
    invoke("infrastructure.abort", operator, {"deployment": canary.pk})
    wait_for(lambda: Deployment.objects.get(pk=canary.pk).finished, timeout=30, what="the abort")
    canary.refresh_from_db()
    assert canary.status == "aborted", canary.reason
    assert versions(address, 10) == {"v1": 10}

    web_service(operator, environment, images, replicas=2, strategy="blue_green", options={"keep_old_seconds": 120})
    job = invoke("infrastructure.deploy", operator, {"environment": environment.name, "service": "web", "image": images.web["v3"]}).job
    green = Deployment.objects.get(job=job)
    wait_for(lambda: version_at(address) == "v3", what="the switch to v3")
    with Poller(address) as poller:
        invoke("infrastructure.abort", operator, {"deployment": green.pk, "reason": "instant rollback"})
        wait_for(lambda: Deployment.objects.get(pk=green.pk).finished, timeout=30, what="the instant rollback")
    green.refresh_from_db()
    assert green.status == "aborted"
    assert poller.failures == [] and poller.transitions()[-1] == "v1"
    log = "\n".join(green.log_lines.values_list("text", flat=True))
    assert "started 2 replica(s) of r1" not in log, "the old colour was still up: nothing had to start"
    assert running_revisions(podman, environment) == ["1", "1"]
    assert HTTPD[0] == "httpd"


def test_first_deploy_of_a_missing_image_fails_saying_so_once(operator, environment, images):
    web_service(operator, environment, images, replicas=1)
    failed = deploy(operator, environment, image="localhost/opsconsole-no-such-image:1")
    assert failed.status == "failed"
    assert "opsconsole-no-such-image" in failed.reason
    assert "previous revision" not in failed.reason and "previous revision" not in failed.job.error
    assert failed.reason.count("failed to find image") == 1, failed.reason
    assert failed.job.error.count("failed to find image") == 1, failed.job.error
