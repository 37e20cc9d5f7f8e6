"""Each strategy end to end on the real engine (podman's Docker API): which
revision answers at each step, and no failed request where the strategy
promises no downtime (a poller asks during the whole deploy)."""

import pytest

from apps.audit.models import AuditEvent
from apps.core.gateway import invoke
from apps.infrastructure.models import Deployment

from .conftest import Poller, deploy, endpoint, labelled, run_resume_job, version_at, versions, web_service

pytestmark = pytest.mark.peer


def test_first_deploy_then_rolling_update_batch_by_batch(operator, environment, images, podman):
    web_service(operator, environment, images, replicas=3, strategy="rolling", options={"batch_size": 1})
    first = deploy(operator, environment)
    assert (first.status, first.revision.number, first.previous_revision) == ("succeeded", 1, None)
    address = endpoint(operator, environment)
    assert versions(address, 10) == {"v1": 10}

    with Poller(address) as poller:
        second = deploy(operator, environment, image=images.web["v2"])
    assert second.status == "succeeded", second.reason
    assert poller.failures == []
    assert poller.transitions()[0] == "v1" and poller.transitions()[-1] == "v2"
    assert len(poller.transitions()) > 2, "a rolling update serves both revisions while batches are replaced"
    assert versions(address, 10) == {"v2": 10}
    replicas = labelled(podman, environment, role="replica")
    assert sorted(c.labels["opsconsole.revision"] for c in replicas) == ["2", "2", "2"]
    assert {c.labels["opsconsole.colour"] for c in replicas} == {second.colour} != {first.colour}
    log = "\n".join(second.log_lines.values_list("text", flat=True))
    assert log.count("replica(s) healthy") == 3
    assert AuditEvent.objects.filter(operation="infrastructure.deploy", channel="worker", outcome="ok").count() == 2


def test_recreate_stops_the_old_revision_before_starting_the_new(operator, environment, images, podman):
    web_service(operator, environment, images, replicas=2, strategy="recreate")
    deploy(operator, environment)
    address = endpoint(operator, environment)
    assert version_at(address) == "v1"
    second = deploy(operator, environment, image=images.web["v2"])
    assert second.status == "succeeded", second.reason
    assert versions(address, 10) == {"v2": 10}
    assert second.service.spec["image"] == images.web["v2"], "the next deploy applies the image now serving"
    log = list(second.log_lines.values_list("text", flat=True))
    removed = next(i for i, line in enumerate(log) if line.startswith("removed r1"))
    started = next(i for i, line in enumerate(log) if line.startswith("started 2 replica(s) of r2"))
    assert removed < started
    assert sorted(c.labels["opsconsole.revision"] for c in labelled(podman, environment, role="replica")) == ["2", "2"]


def test_blue_green_switches_at_once_without_a_failed_request(operator, environment, images, podman):
    web_service(operator, environment, images, replicas=2, strategy="blue_green", options={"keep_old_seconds": 1})
    first = deploy(operator, environment)
    address = endpoint(operator, environment)
    with Poller(address) as poller:
        second = deploy(operator, environment, image=images.web["v2"])
    assert second.status == "succeeded", second.reason
    assert poller.failures == []
    assert poller.transitions() == ["v1", "v2"], "blue-green never mixes colours"
    assert (first.colour, second.colour) == ("blue", "green")
    log = list(second.log_lines.values_list("text", flat=True))
    switch = log.index("traffic → r2 (green) ×2")
    keep = next(i for i, line in enumerate(log) if line.startswith("keeping r1 (blue) ×2 for 1 s"))
    removed = log.index("removed r1 (blue) ×2")
    assert switch < keep < removed, "the old colour stays up after the switch, then goes"
    replicas = labelled(podman, environment, role="replica")
    assert {(c.labels["opsconsole.revision"], c.labels["opsconsole.colour"]) for c in replicas} == {("2", "green")}


def test_canary_steps_weights_pause_promote_and_analysis(operator, environment, images, podman):
    steps = [
        {"set_weight": 33},
        {"pause": {}},
        {"analysis": {"count": 2, "interval_seconds": 0.2}},
        {"set_weight": 66},
        {"pause": {"seconds": 0.2}},
    ]
    web_service(operator, environment, images, replicas=3, strategy="canary", options={"steps": steps})
    deploy(operator, environment)
    address = endpoint(operator, environment)
    with Poller(address) as poller:
        canary = deploy(operator, environment, image=images.web["v2"])
        assert canary.status == "paused", canary.reason
        assert canary.step == 1 and "until someone promotes" in canary.reason
        share = versions(address, 150)
        assert set(share) == {"v1", "v2"}
        assert 0.25 < share["v2"] / 150 < 0.42, f"1 of 3 replicas on the canary: {share}"
        in_traffic = {c.labels["opsconsole.revision"] for c in labelled(podman, environment, role="replica") if c.status == "running"}
        assert in_traffic == {"1", "2"}

        promoted = invoke("infrastructure.promote", operator, {"deployment": canary.pk}).result
        assert promoted.status == "queued"
        run_resume_job()
    resume = Deployment.objects.get(pk=canary.pk)
    assert resume.status == "succeeded", resume.reason
    assert poller.failures == []
    assert versions(address, 10) == {"v2": 10}
    log = "\n".join(resume.log_lines.values_list("text", flat=True))
    assert "weight 33%: r1 (blue) ×2, r2 (green) ×1" in log
    assert "measurement 2/2 — health: successful" in log
    assert "weight 66%: r1 (blue) ×1, r2 (green) ×2" in log
    assert "weight 100%: r2 (green) ×3" in log
    assert Deployment.objects.get(pk=canary.pk).service.current_revision.number == 2
