"""Lowering a guard is itself risky: unprotecting an environment (or lowering its
quorum, or pointing it at another engine), marking a risky runbook not risky or
changing what it runs, editing a service of a protected environment. An admin's
request waits until another person approves; raising protection applies at once.
None of these calls reaches an engine, so no engine is needed."""

import pytest

from apps.approvals import services as approvals
from apps.audit.models import AuditEvent
from apps.core.errors import InvalidInput, PermissionDenied
from apps.core.gateway import invoke, run_job
from apps.core.models import Job
from apps.infrastructure.models import Environment, Runbook, Service


@pytest.fixture
def admin(make_user, actor_of):
    return actor_of(make_user("admin", "approver"))


@pytest.fixture
def approver(make_user, actor_of):
    return actor_of(make_user("approver"))


def save_env(actor, **fields):
    return invoke("infrastructure.save_environment", actor, {"name": "prod", "engine_url": "unix:///run/none.sock", **fields})


def approve_and_run(outcome, approver) -> Job:
    approvals.vote(outcome.approval.pk, approver, "approve")
    job = Job.objects.get(approval_id=outcome.approval.pk)
    run_job(str(job.pk))
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    return job


def test_unprotecting_waits_for_another_person_protecting_is_immediate(admin, approver):
    assert save_env(admin).status == "ok"
    assert save_env(admin, protected=True, quorum=2).status == "ok"  # raising: at once
    assert Environment.objects.get(name="prod").protected

    outcome = save_env(admin, protected=False)
    assert outcome.status == "pending" and outcome.approval.scope == "environment:prod"
    assert outcome.approval.quorum == 1  # guard ops have no policy of their own in that scope: the default
    assert Environment.objects.get(name="prod").protected
    with pytest.raises(PermissionDenied, match="own request"):
        approvals.vote(outcome.approval.pk, admin, "approve")
    assert Environment.objects.get(name="prod").protected

    approve_and_run(outcome, approver)
    assert not Environment.objects.get(name="prod").protected
    assert AuditEvent.objects.filter(operation="infrastructure.save_environment", outcome="pending").count() == 1
    assert AuditEvent.objects.get(operation="infrastructure.save_environment", channel="worker").approval_id == str(outcome.approval.pk)


@pytest.mark.parametrize(
    "change",
    [{"quorum": 1}, {"engine_url": "tcp://elsewhere:2376"}, {"router_image": "registry.example.test/evil:1"},
     {"publish_address": "0.0.0.0"}, {"host_address": "127.0.0.2"}],
)  # fmt: skip
def test_lower_quorum_or_another_engine_router_or_address_waits(admin, change):
    save_env(admin, protected=True, quorum=2)
    stored = Environment.objects.filter(name="prod").values().get()
    outcome = save_env(admin, **{"protected": True, "quorum": 2, **change})
    assert outcome.status == "pending"
    assert Environment.objects.filter(name="prod").values().get() == stored
    field = next(iter(change))
    assert outcome.approval.plan["after"][field] == change[field] != outcome.approval.plan["before"][field]
    assert save_env(admin, protected=True, quorum=3).status == "ok"


def test_saving_a_protected_environment_never_lowers_a_stricter_policy_of_its_deploys(admin):
    """Saving an environment sets its deploys', stops' and prunes' policy quorum to its own: where a policy
    asks more, that save lowers a guard, even when nothing else about the environment changes."""
    from apps.approvals.models import ApprovalPolicy

    save_env(admin, protected=True, quorum=2)
    policy = ApprovalPolicy.objects.get(operation="infrastructure.deploy", scope="environment:prod")
    invoke("approvals.save_policy", admin, {"id": policy.pk, "operation": "infrastructure.deploy", "scope": "environment:prod",
                                            "quorum": 3})  # fmt: skip
    outcome = save_env(admin, protected=True, quorum=2, timeout_seconds=40)
    assert outcome.status == "pending"
    assert (outcome.approval.plan["before"]["quorum"], outcome.approval.plan["after"]["quorum"]) == (3, 2)
    assert ApprovalPolicy.objects.get(pk=policy.pk).quorum == 3
    assert save_env(admin, protected=True, quorum=3, timeout_seconds=40).status == "ok"


def test_a_new_tls_client_key_waits_and_never_shows(admin):
    save_env(admin, protected=True)
    key = "-----BEGIN PRIVATE KEY-----\nTUlJQ2VRSUJBREFOQmdrcWhraUc5dzBCQVFFRkFBU0NBbU13Z2dKZkFnRUFBb0dCQUx0\n-----END PRIVATE KEY-----\n"
    outcome = save_env(admin, protected=True, tls_client_key=key)
    assert outcome.status == "pending" and "TUlJQ2VR" not in str(outcome.approval.plan)
    assert outcome.approval.plan["after"]["tls_client_key"].startswith("••••")
    assert Environment.objects.get(name="prod").tls_client_key == ""


def test_the_plan_says_before_and_after(admin):
    save_env(admin, protected=True, quorum=2)
    from apps.infrastructure.services.environments import SaveEnvironmentInput, plan_save_environment

    plan = plan_save_environment(None, SaveEnvironmentInput(name="prod", engine_url="unix:///run/none.sock", protected=False))
    assert plan["before"]["protected"] is True and plan["after"]["protected"] is False


def runbook(actor, tmp_path, **fields):
    params = {"name": "restart", "argv": ["true"], "working_dir": str(tmp_path), **fields}
    return invoke("infrastructure.save_runbook", actor, params)


def test_marking_a_risky_runbook_not_risky_or_editing_its_argv_waits(admin, approver, tmp_path):
    assert runbook(admin, tmp_path, risky=True).status == "ok"  # a new risky runbook: at once
    assert runbook(admin, tmp_path, risky=True, description="harmless").status == "ok"

    for change in ({"risky": False}, {"risky": True, "argv": ["rm", "-rf", "/tmp/x"]}, {"risky": True, "timeout_seconds": 3600},
                   {"risky": True, "env": {"TOKEN": "s3cret"}}):  # fmt: skip
        outcome = runbook(admin, tmp_path, **change)
        assert outcome.status == "pending", change
        assert outcome.approval.scope == "runbook:restart"
    stored = Runbook.objects.get(name="restart")
    assert (stored.risky, stored.argv, stored.timeout_seconds, stored.env) == (True, ["true"], 60, {})
    assert "s3cret" not in str(list(AuditEvent.objects.values_list("params", flat=True)))

    approve_and_run(runbook(admin, tmp_path, risky=False), approver)
    assert not Runbook.objects.get(name="restart").risky
    assert runbook(admin, tmp_path, risky=False, description="still harmless").status == "ok"  # runs the same: at once
    assert runbook(admin, tmp_path, risky=True, argv=["echo", "hi"]).status == "ok"  # risky again: its runs wait


def test_a_not_risky_twin_of_a_risky_runbook_waits_like_unmarking_it(admin, approver, tmp_path):
    """Defining a not-risky runbook, or changing what one runs, is what marking a risky one not risky is:
    a command anyone may run with no second person. It waits; a new risky runbook does not."""
    assert runbook(admin, tmp_path, risky=True, argv=["rm", "-rf", "/srv/cache"]).status == "ok"
    twin = invoke("infrastructure.save_runbook", admin, {"name": "twin", "argv": ["rm", "-rf", "/srv/cache"], "working_dir": str(tmp_path)})
    assert twin.status == "pending" and twin.approval.scope == "runbook:twin"
    assert not Runbook.objects.filter(name="twin").exists()
    with pytest.raises(PermissionDenied, match="own request"):
        approvals.vote(twin.approval.pk, admin, "approve")
    approve_and_run(twin, approver)
    assert not Runbook.objects.get(name="twin").risky
    for change in ({"argv": ["rm", "-rf", "/"]}, {"timeout_seconds": 3600}, {"env": {"TOKEN": "s3cret"}}):
        outcome = invoke("infrastructure.save_runbook", admin, {"name": "twin", "argv": ["rm", "-rf", "/srv/cache"],
                                                                "working_dir": str(tmp_path), **change})  # fmt: skip
        assert outcome.status == "pending", change
    assert Runbook.objects.get(name="twin").argv == ["rm", "-rf", "/srv/cache"]


def service(actor, **fields):
    params = {"environment": "prod", "name": "api", "image": "busybox:1.36", "replicas": 1, "ports": [{"container": 8080}], **fields}
    return invoke("infrastructure.save_service", actor, params)


def test_editing_a_service_of_a_protected_environment_waits(admin, approver, make_user, actor_of):
    operator = actor_of(make_user("operator"))
    save_env(admin)
    assert service(operator).status == "ok"
    assert service(operator, replicas=3).status == "ok"  # unprotected: at once
    save_env(admin, protected=True)
    assert service(operator, replicas=3).status == "ok"  # unchanged: nothing to approve

    for change in ({"image": "evil:latest"}, {"strategy": "recreate"}, {"secret_env": {"DB_PASSWORD": "new-s3cret"}}):
        outcome = service(operator, replicas=3, **change)
        assert outcome.status == "pending", change
    api = Service.objects.get(name="api")
    assert (api.spec["image"], api.strategy, api.secret_env) == ("busybox:1.36", "rolling", {})
    assert "new-s3cret" not in str(list(AuditEvent.objects.values_list("params", flat=True)))

    approve_and_run(service(operator, replicas=3, image="busybox:1.37"), approver)
    assert Service.objects.get(name="api").spec["image"] == "busybox:1.37"
    assert service(operator, name="worker").status == "ok"  # a new service runs nothing until its (approved) deploy
    with pytest.raises(InvalidInput, match="port"):
        service(operator, ports=[], image="evil:latest")
    assert Service.objects.get(name="api").spec["image"] == "busybox:1.37"


def test_through_the_web_form_an_admin_unprotecting_lands_on_the_approval_page(client, make_user, actor_of):
    user = make_user("admin", "approver")
    save_env(actor_of(user), protected=True)
    client.force_login(user)
    form = {
        "name": "prod",
        "engine_url": "unix:///run/none.sock",
        "quorum": "1",
        "publish_address": "127.0.0.1",
        "host_address": "127.0.0.1",
        "router_image": "busybox:1.36",
        "timeout_seconds": "30",
    }  # fmt: skip (protected unticked)
    response = client.post("/operations/infrastructure.save_environment/", form)
    outcome = AuditEvent.objects.get(operation="infrastructure.save_environment", outcome="pending")
    assert response.status_code == 302 and response["Location"] == f"/approvals/{outcome.approval_id}/"
    assert Environment.objects.get(name="prod").protected
    assert "own request" in client.post(f"/approvals/{outcome.approval_id}/vote/", {"decision": "approve"}, follow=True).content.decode()
    assert Environment.objects.get(name="prod").protected

    form["protected"] = "on"
    form["quorum"] = "2"
    assert client.post("/operations/infrastructure.save_environment/", form).status_code == 200  # raising: done at once
    assert Environment.objects.get(name="prod").quorum == 2


def test_every_guard_operation_is_risky_with_a_scope_and_a_planner():
    from apps.core.operations import Risk, all_operations, operation

    guards = {op.name for op in all_operations() if op.guard}
    assert guards == {"approvals.save_policy", "approvals.delete_policy", "infrastructure.save_environment",
                      "infrastructure.save_runbook", "infrastructure.save_service", "accounts.save_user",
                      "audit.save_sink", "audit.disable_sink", "storage.reclassify", "storage.backup_restore",
                      "audit.legal_hold", "security.add_exception", "security.triage_finding"}  # fmt: skip
    assert all(op.risk is Risk.RISKY and op.planner and op.approval_scope for op in all_operations() if op.guard)
    with pytest.raises(TypeError, match="guard change is risky"):
        operation("test.sneaky_guard", risk=Risk.WRITE, guard=True)


def test_break_glass_never_lowers_a_guard(admin):
    save_env(admin, protected=True)
    with pytest.raises(PermissionDenied, match="lowers a guard: break-glass does not apply"):
        invoke("infrastructure.save_environment", admin, {"name": "prod", "engine_url": "unix:///run/none.sock", "protected": False},
               reason="production is on fire", break_glass=True)  # fmt: skip
    assert Environment.objects.get(name="prod").protected
    assert AuditEvent.objects.get(operation="infrastructure.save_environment", outcome="denied")
    # Raising a guard needs no glass broken: it applies at once, break_glass or not.
    assert invoke("infrastructure.save_environment", admin, {"name": "prod", "engine_url": "unix:///run/none.sock", "protected": True,
                  "quorum": 2}, reason="tighten", break_glass=True).status == "ok"  # fmt: skip
