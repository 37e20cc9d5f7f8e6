"""A protected environment: its quorum is the approval policy; a deploy waits
as "pending approval" with its revision pinned, runs once enough other people
approve, and everything is in the audit log. Secret variables reach the
containers but never the audit log, the revision or a page."""

import pytest

from apps.approvals import services as approvals
from apps.approvals.models import ApprovalPolicy
from apps.audit.models import AuditEvent
from apps.core.errors import InvalidInput, PermissionDenied
from apps.core.gateway import invoke, run_job
from apps.core.models import Job
from apps.infrastructure.errors import InfrastructureError
from apps.infrastructure.models import Deployment

from .conftest import HTTPD, RUN, deploy, endpoint, labelled, version_at

pytestmark = pytest.mark.peer


def save_environment(admin, podman, images, **fields):
    params = {"name": f"{RUN}-prod", "engine_url": podman.url, "router_image": images.router, **fields}
    return invoke("infrastructure.save_environment", admin, params).result


def test_environment_quorum_becomes_the_approval_policy(admin, podman, images, operator):
    save_environment(admin, podman, images, protected=True, quorum=2)
    scope = f"environment:{RUN}-prod"
    policies = {p.operation: p.quorum for p in ApprovalPolicy.objects.filter(scope=scope)}
    assert policies == {"infrastructure.deploy": 2, "infrastructure.stop": 2, "infrastructure.prune": 2}
    save_environment(admin, podman, images, protected=True, quorum=3)
    assert set(ApprovalPolicy.objects.filter(scope=scope).values_list("quorum", flat=True)) == {3}
    unprotect = invoke("infrastructure.save_environment", admin, {"name": f"{RUN}-prod", "engine_url": podman.url, "protected": False})
    assert unprotect.status == "pending"  # lowering a guard: another person approves it (tests/infrastructure/test_guarded_guards.py)
    assert ApprovalPolicy.objects.filter(scope=scope).count() == 3
    with pytest.raises(PermissionDenied, match=r"infrastructure\.manage_environments"):
        invoke("infrastructure.save_environment", operator, {"name": "sneaky", "engine_url": podman.url})


def test_protected_deploy_waits_for_a_quorum_of_other_people(admin, operator, make_user, actor_of, podman, images):
    save_environment(admin, podman, images, protected=True, quorum=2)
    env_name = f"{RUN}-prod"
    invoke("infrastructure.save_service", operator, {
        "environment": env_name, "name": "api", "image": images.web["v1"], "command": HTTPD, "replicas": 1,
        "ports": [{"container": 8080}], "healthcheck": {"path": "/version", "interval_seconds": 0.1},
        "strategy": "blue_green", "strategy_options": {"keep_old_seconds": 0},
    })  # fmt: skip
    try:
        outcome = invoke("infrastructure.deploy", operator, {"environment": env_name, "service": "api"}, reason="first release")
        assert outcome.status == "pending"
        deployment = Deployment.objects.get(approval=outcome.approval)
        assert (deployment.status, deployment.revision.number, deployment.job) == ("pending approval", 1, None)
        assert outcome.approval.scope == f"environment:{env_name}" and outcome.approval.quorum == 2
        assert not Job.objects.exists()

        with pytest.raises(PermissionDenied, match="approve_requests permission"):
            approvals.vote(outcome.approval.pk, operator, "approve")
        first, second = make_user("approver"), make_user("approver")
        approvals.vote(outcome.approval.pk, actor_of(first), "approve", "looks fine")
        deployment.refresh_from_db()
        assert deployment.status == "pending approval"
        approvals.vote(outcome.approval.pk, actor_of(second), "approve")
        deployment.refresh_from_db()
        assert deployment.status == "queued"
        assert deployment.approved_by == f"{first.username}, {second.username}"

        run_job(str(deployment.job.pk))
        deployment.refresh_from_db()
        assert deployment.status == "succeeded", deployment.reason
        assert version_at(endpoint(operator, Deployment.objects.get(pk=deployment.pk).service.environment, "api")) == "v1"

        events = list(AuditEvent.objects.filter(operation__in=["infrastructure.deploy", "approvals.approve"]).order_by("seq"))
        trail = [(e.operation, e.actor, e.channel, e.outcome) for e in events]
        assert trail == [
            ("infrastructure.deploy", operator.name, "web", "pending"),
            ("approvals.approve", operator.name, "web", "denied"),
            ("approvals.approve", first.username, "web", "ok"),
            ("approvals.approve", second.username, "web", "ok"),
            ("infrastructure.deploy", operator.name, "worker", "ok"),
        ]
        assert events[-1].approval_id == str(outcome.approval.pk)
        assert events[0].target == f"{env_name}/api"

        rejected = invoke("infrastructure.deploy", operator, {"environment": env_name, "service": "api", "image": images.web["v2"]})
        approvals.vote(rejected.approval.pk, actor_of(first), "reject", "not on a Friday")
        refused = Deployment.objects.get(approval=rejected.approval)
        assert (refused.status, refused.reason) == ("aborted", f"approval request #{rejected.approval.pk} rejected by {first.username}")
        # Its revision was pinned when requested; a rollback (no approval needed) must not deploy it.
        with pytest.raises(InfrastructureError, match="never deployed successfully"):
            invoke("infrastructure.rollback", operator, {"environment": env_name, "service": "api", "revision": refused.revision.number})
        assert not Deployment.objects.filter(kind="rollback").exists()
    finally:
        podman.remove_matching(f"{env_name}-")


def test_unknown_service_is_refused_before_any_approval(admin, operator, podman, images):
    save_environment(admin, podman, images, protected=True)
    with pytest.raises(InvalidInput, match="has no service named 'nope'"):
        invoke("infrastructure.deploy", operator, {"environment": f"{RUN}-prod", "service": "nope"})
    assert not Deployment.objects.exists()


def test_secret_env_reaches_the_container_and_nowhere_else(operator, environment, images, podman, client_as):
    secret = "s3cr3t-" + RUN
    invoke("infrastructure.save_service", operator, {
        "environment": environment.name, "name": "web", "image": images.web["v1"], "command": HTTPD,
        "ports": [{"container": 8080}], "healthcheck": {"path": "/version", "interval_seconds": 0.1},
        "env": {"MODE": "plain"}, "secret_env": {"API_TOKEN": secret},
    })  # fmt: skip
    deployment = deploy(operator, environment)
    assert deployment.status == "succeeded", deployment.reason
    container = labelled(podman, environment, role="replica")[0]
    assert f"API_TOKEN={secret}" in container.attrs["Config"]["Env"]
    assert "MODE=plain" in container.attrs["Config"]["Env"]

    saved = AuditEvent.objects.get(operation="infrastructure.save_service")
    assert saved.params["secret_env"] == "[redacted]" and saved.params["env"] == {"MODE": "plain"}
    assert secret not in str(list(AuditEvent.objects.values_list("params", flat=True)))
    assert deployment.revision.spec["secret_env_names"] == ["API_TOKEN"] and secret not in str(deployment.revision.spec)
    revisions = invoke("infrastructure.revisions", operator, {"environment": environment.name, "service": "web"}).result
    assert secret not in revisions.model_dump_json()
    page = client_as("operator").get(f"/infrastructure/{environment.name}/web/")
    assert page.status_code == 200 and b"API_TOKEN" in page.content and secret.encode() not in page.content


def test_the_requester_is_notified_in_deployment_words_with_a_link(operator, make_user, actor_of, environment, images):
    from apps.core.models import Notification

    from .conftest import web_service

    web_service(operator, environment, images, replicas=1)
    Deployment.objects.all().delete()
    environment.protected = True
    environment.save()
    approval = invoke(
        "infrastructure.deploy",
        operator,
        {"environment": environment.name, "service": "web", "image": "localhost/opsconsole-no-such-image:1"},
    ).approval
    approvals.vote(approval.pk, actor_of(make_user("approver")), "approve")
    deployment = Deployment.objects.get(approval=approval)
    run_job(str(deployment.job_id))
    note = Notification.objects.filter(user=operator.user).latest("created_at")
    assert note.text == f"{environment.name}/web deploy failed"
    assert note.link == deployment.get_absolute_url()
