"""A protected deploy's plan: the fully resolved spec (image id from the engine, secret
values masked, only the chosen strategy's options) and its diff against the revision
serving now. A spec changed after the request ends the request `drifted`: nothing on
the engine changes."""

import pytest

from apps.approvals import services as approvals
from apps.approvals.models import ApprovalRequest
from apps.audit.models import AuditEvent
from apps.core.gateway import invoke, run_job
from apps.core.models import Job
from apps.infrastructure.models import Deployment

from .conftest import RUN, deploy, endpoint, labelled, version_at, web_service

pytestmark = pytest.mark.peer


def protect(environment):
    environment.protected = True
    environment.save()  # its policies follow (Environment.sync_approval_policies)


def test_the_plan_is_the_resolved_spec_and_its_diff_against_what_serves(operator, environment, images, podman, client, make_user):
    secret = "hunter2-plan"
    web_service(operator, environment, images, version="v1", replicas=1, secret_env={"API_TOKEN": secret}, env={"MODE": "a"})
    assert deploy(operator, environment).status == "succeeded"
    protect(environment)

    outcome = invoke("infrastructure.deploy", operator, {"environment": environment.name, "service": "web", "image": images.web["v2"]})
    plan = outcome.approval.plan
    assert plan["after"]["image"] == images.web["v2"] and plan["before"]["image"] == images.web["v1"]
    assert plan["after"]["image_id"] == podman.client().images.get(images.web["v2"]).id
    assert plan["serving_revision"] == 1 and plan["strategy"] == "rolling"
    assert set(plan["options"]) == {"batch_size", "drain_seconds", "stop_timeout"}  # rolling's own options only
    assert plan["after"]["secret_env"]["API_TOKEN"].startswith("••••") and secret not in str(plan)
    assert plan["links"] == {"service": f"/infrastructure/{environment.name}/web/"}
    assert plan["environment"] == {"engine_url": environment.engine_url, "router_image": environment.router_image,
                                   "publish_address": "127.0.0.1", "host_address": "127.0.0.1"}  # fmt: skip
    client.force_login(make_user("approver"))  # the page links the service and the deployment waiting for this vote
    page = client.get(f"/approvals/{outcome.approval.pk}/").content.decode()
    waiting = Deployment.objects.get(approval=outcome.approval)
    assert f'href="/infrastructure/{environment.name}/web/"' in page and f'href="{waiting.get_absolute_url()}"' in page


def test_a_spec_changed_after_the_request_ends_drifted_and_no_container_changes(operator, environment, images, podman, make_user, actor_of):
    web_service(operator, environment, images, version="v1", replicas=1)
    assert deploy(operator, environment).status == "succeeded"
    before = sorted((c.id, c.status) for c in labelled(podman, environment))
    protect(environment)

    outcome = invoke("infrastructure.deploy", operator, {"environment": environment.name, "service": "web", "image": images.web["v2"]})
    # While the request waits, the service's spec gains a second replica and a new variable: in a protected
    # environment that change is itself approved by another person (tests/infrastructure/test_guarded_guards.py).
    web_service(operator, environment, images, version="v1", replicas=2, env={"DEBUG": "1"})
    spec_change = ApprovalRequest.objects.get(operation="infrastructure.save_service", status="pending")
    approvals.vote(spec_change.pk, actor_of(make_user("approver")), "approve")
    run_job(str(Job.objects.get(approval_id=spec_change.pk).pk))
    approvals.vote(outcome.approval.pk, actor_of(make_user("approver")), "approve")
    job = Job.objects.get(approval_id=outcome.approval.pk)
    run_job(str(job.pk))

    outcome.approval.refresh_from_db()
    assert outcome.approval.status == "drifted"
    assert Job.objects.get(pk=job.pk).status == "failed"
    deployment = Deployment.objects.get(approval=outcome.approval)
    assert deployment.status == "aborted" and "drifted" in deployment.reason and deployment.started_at is None
    assert sorted((c.id, c.status) for c in labelled(podman, environment)) == before  # no container changed
    changed = AuditEvent.objects.get(operation="approvals.drifted").params["changed"]
    assert "+ after.replicas: 2" in changed and '+ after.env.DEBUG: "1"' in changed


def test_a_stop_plan_lists_the_containers_it_stops(operator, environment, images, podman):
    web_service(operator, environment, images, version="v1", replicas=1)
    assert deploy(operator, environment).status == "succeeded"
    protect(environment)
    outcome = invoke("infrastructure.stop", operator, {"environment": environment.name, "service": "web"})
    names = sorted(c.name for c in labelled(podman, environment, service="web"))
    assert outcome.approval.plan["containers"] == sorted(
        f"{c.name} ({c.labels['opsconsole.role']}, running)" for c in labelled(podman, environment, service="web")
    )
    assert len(names) == 2 and all(c.status == "running" for c in labelled(podman, environment))  # nothing stopped yet


def test_a_tag_moved_after_the_approval_never_reaches_a_restart(operator, environment, images, podman, make_user, actor_of):
    """Replicas run the image id the approver voted on: a rebuild or retag of the same tag afterwards (a
    write, no approval) changes nothing a restart (a write too) or any later start of that revision runs."""
    client, repository = podman.client(), f"localhost/{RUN}-moving"
    moving = f"{repository}:1"
    approved_id, other_id = client.images.get(images.web["v1"]).id, client.images.get(images.web["v2"]).id
    client.images.get(images.web["v1"]).tag(repository, "1")
    try:
        web_service(operator, environment, images, replicas=1, image=moving)
        protect(environment)
        outcome = invoke("infrastructure.deploy", operator, {"environment": environment.name, "service": "web"})
        assert outcome.approval.plan["after"]["image_id"] == approved_id
        approvals.vote(outcome.approval.pk, actor_of(make_user("approver")), "approve")
        run_job(str(Job.objects.get(approval_id=outcome.approval.pk).pk))
        deployment = Deployment.objects.select_related("revision").get(approval=outcome.approval)
        assert deployment.status == "succeeded" and deployment.revision.image_id == approved_id

        client.images.get(images.web["v2"]).tag(repository, "1")  # the tag now names other bytes
        assert client.images.get(moving).id == other_id
        restart = deploy(operator, environment, operation="infrastructure.restart")
        assert restart.status == "succeeded" and restart.revision_id == deployment.revision_id
        replicas = [c for c in labelled(podman, environment, role="replica") if c.status == "running"]
        assert replicas and {c.image.id for c in replicas} == {approved_id}
        assert version_at(endpoint(operator, environment)) == "v1"
    finally:
        client.images.remove(moving)
