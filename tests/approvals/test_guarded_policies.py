"""Approval policies are guards: weakening one waits for another person's approval
(admins included, whatever the scope's policy says); strengthening one applies at once.
And group quorum: N approvals from one group and M from another, distinct people,
never the requester."""

import pytest
from django.contrib.auth.models import Group

from apps.approvals import services
from apps.approvals.models import ApprovalPolicy, ApprovalRequest
from apps.approvals.policies import SavePolicyInput, _seats_filled, plan_save_policy, quorum_reached
from apps.audit.models import AuditEvent
from apps.core.errors import InvalidInput, PermissionDenied
from apps.core.gateway import invoke
from apps.core.models import Job
from tests.support.approving import approve_and_run

RISKY = "core.purge_jobs"


@pytest.fixture
def admin(make_user, actor_of):
    """An admin who is also an approver: still never approves their own guard change."""
    return actor_of(make_user("admin", "approver"))


def save(actor, **fields):
    return invoke("approvals.save_policy", actor, {"operation": RISKY, **fields})


def test_stricter_policy_applies_at_once_weaker_one_waits_for_someone_else(admin, make_user, actor_of):
    outcome = save(admin, quorum=2)
    assert outcome.status == "ok"  # from the default (one approval) to two: stricter
    policy = ApprovalPolicy.objects.get(operation=RISKY)
    assert save(admin, id=policy.pk, quorum=3, wait_minutes=5).status == "ok"

    pending = save(admin, id=policy.pk, quorum=1, wait_minutes=5)
    assert pending.status == "pending" and pending.approval.scope == ""
    assert ApprovalPolicy.objects.get(pk=policy.pk).quorum == 3  # nothing changed yet
    with pytest.raises(PermissionDenied, match="own request"):
        services.vote(pending.approval.pk, admin, "approve")
    assert AuditEvent.objects.get(operation="approvals.save_policy", outcome="pending").actor == admin.name

    approve_and_run(pending.approval, actor_of(make_user("approver")))
    assert ApprovalPolicy.objects.get(pk=policy.pk).quorum == 1
    run = AuditEvent.objects.get(operation="approvals.save_policy", channel="worker")
    assert (run.actor, run.outcome, run.approval_id) == (admin.name, "ok", str(pending.approval.pk))


@pytest.mark.parametrize(
    "change, why",
    [
        ({"requires_approval": False}, "approval no longer required"),
        ({"quorum": 1}, "quorum 2 → 1"),
        ({"expiry_hours": 48}, "expiry 24 h → 48 h"),
        ({"wait_minutes": 0}, "wait 10 min → 0 min"),
        ({"group_quorum": {}}, "approvals from sre 1 → 0"),
        ({"break_glass_tokens": True}, "break-glass allowed for tokens"),
        ({"scope": "environment:staging"}, "quorum 2 → 1"),  # narrowed: other scopes fall back to the default
    ],
)
def test_each_kind_of_weakening_waits(admin, change, why):
    Group.objects.get_or_create(name="sre")
    policy = ApprovalPolicy.objects.create(operation=RISKY, quorum=2, expiry_hours=24, wait_minutes=10, group_quorum={"sre": 1})
    before = ApprovalPolicy.objects.filter(pk=policy.pk).values().get()
    fields = {"quorum": 2, "expiry_hours": 24, "wait_minutes": 10, "group_quorum": {"sre": 1}, **change}
    outcome = save(admin, id=policy.pk, **fields)
    assert outcome.status == "pending"
    assert ApprovalPolicy.objects.filter(pk=policy.pk).values().get() == before
    plan = plan_save_policy(None, SavePolicyInput(operation=RISKY, id=policy.pk, **fields))
    assert plan["policy"]["before"]["quorum"] == 2
    assert why in plan["lowers"], plan


def test_deleting_a_policy_waits_and_a_more_specific_weaker_one_too(admin, make_user, actor_of):
    strict = ApprovalPolicy.objects.create(operation="*", scope="environment:prod", quorum=2)
    deleted = invoke("approvals.delete_policy", admin, {"id": strict.pk})
    assert deleted.status == "pending" and deleted.approval.scope == "environment:prod"
    assert ApprovalPolicy.objects.filter(pk=strict.pk).exists()
    # A new (operation, any scope) row would outrank ("*", prod) for that operation in prod: weaker.
    assert save(admin, quorum=1).status == "pending"
    assert not ApprovalPolicy.objects.filter(operation=RISKY).exists()
    # The change is approved under the scope's own policy: two other people for production.
    services.vote(deleted.approval.pk, actor_of(make_user("approver")), "approve")
    assert not Job.objects.filter(approval_id=deleted.approval.pk).exists()
    approve_and_run(deleted.approval, actor_of(make_user("approver")))
    assert not ApprovalPolicy.objects.filter(pk=strict.pk).exists()


def test_a_policy_exempting_everything_does_not_exempt_guard_changes(admin):
    ApprovalPolicy.objects.create(operation="*", requires_approval=False)
    policy = ApprovalPolicy.objects.create(operation=RISKY, quorum=2)
    assert save(admin, id=policy.pk, quorum=1).status == "pending"
    assert ApprovalPolicy.objects.get(pk=policy.pk).quorum == 2


def test_an_exempting_policys_quorum_still_guards_guard_changes_so_lowering_it_waits(admin):
    """Guard changes need approval under an exempting row too, with that row's quorum, expiry, wait and
    groups: lowering those is lowering a guard even though the row says `requires_approval: false`."""
    Group.objects.get_or_create(name="sre")
    row = {"operation": "*", "scope": "environment:prod", "requires_approval": False, "quorum": 2, "expiry_hours": 24,
           "wait_minutes": 10, "group_quorum": {"sre": 1}}  # fmt: skip
    policy = ApprovalPolicy.objects.create(**row)
    for change in ({"quorum": 1}, {"expiry_hours": 48}, {"wait_minutes": 0}, {"group_quorum": {}}):
        outcome = invoke("approvals.save_policy", admin, {**row, "id": policy.pk, **change})
        assert outcome.status == "pending", change
        assert outcome.approval.quorum == 2 and outcome.approval.group_quorum == {"sre": 1}
    assert ApprovalPolicy.objects.filter(pk=policy.pk).values(*row).get() == row
    assert invoke("approvals.save_policy", admin, {**row, "id": policy.pk, "quorum": 3}).status == "ok"  # stricter: at once


def test_a_restore_policy_is_read_both_ways_so_weakening_either_side_waits(admin):
    """storage.backup_restore lowers a guard only when it writes over protected objects: its other calls follow
    the row's `requires_approval`, the guard ones its quorum even under an exempting row. Weakening either waits."""
    row = {"operation": "storage.backup_restore", "scope": "", "requires_approval": True, "quorum": 2}
    policy = ApprovalPolicy.objects.create(**row)
    assert invoke("approvals.save_policy", admin, {**row, "id": policy.pk, "requires_approval": False}).status == "pending"
    ApprovalPolicy.objects.filter(pk=policy.pk).update(requires_approval=False)  # arranged: an exempting row of quorum 2
    assert invoke("approvals.save_policy", admin, {**row, "id": policy.pk, "requires_approval": False, "quorum": 1}).status == "pending"
    assert ApprovalPolicy.objects.get(pk=policy.pk).quorum == 2


def test_bad_policy_input_is_a_field_error_and_changes_nothing(admin):
    with pytest.raises(InvalidInput) as exc:
        invoke("approvals.save_policy", admin, {"operation": "core.echo_job", "group_quorum": {"nobody": 1}})
    assert set(exc.value.errors) == {"operation", "group_quorum"}
    assert not ApprovalPolicy.objects.exists()


def test_operator_may_not_touch_policies(make_user, actor_of):
    with pytest.raises(PermissionDenied, match="manage_policies"):
        save(actor_of(make_user("operator")), quorum=5)
    assert not ApprovalPolicy.objects.exists()


# --- group quorum ---------------------------------------------------------------------------


def test_one_sre_and_one_security_approver_two_sres_are_not_enough(admin, make_user, actor_of, client):
    for name in ("sre", "security"):
        Group.objects.get_or_create(name=name)
    assert save(admin, quorum=2, group_quorum={"sre": 1, "security": 1}).status == "ok"
    requester = make_user("operator", "approver", "sre", "security")
    approval = invoke(RISKY, actor_of(requester), {"older_than_days": 30}).approval
    assert approval.group_quorum == {"sre": 1, "security": 1}
    with pytest.raises(PermissionDenied, match="own request"):
        services.vote(approval.pk, actor_of(requester), "approve")

    services.vote(approval.pk, actor_of(make_user("approver", "sre")), "approve")
    services.vote(approval.pk, actor_of(make_user("approver", "sre")), "approve")
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "pending"  # two SREs, no security
    client.force_login(make_user("approver", "security"))
    page = client.get(f"/approvals/{approval.pk}/").content.decode()
    assert "2 of 2 approval(s), including 1 from security and 1 from sre" in page
    assert not Job.objects.filter(approval_id=approval.pk).exists()

    services.vote(approval.pk, actor_of(make_user("approver", "security")), "approve")
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "approved"
    assert Job.objects.filter(approval_id=approval.pk).count() == 1


def test_one_person_in_both_groups_fills_one_seat_only(admin, make_user, actor_of):
    for name in ("sre", "security"):
        Group.objects.get_or_create(name=name)
    ApprovalPolicy.objects.create(operation=RISKY, quorum=1, group_quorum={"sre": 1, "security": 1})
    approval = invoke(RISKY, actor_of(make_user("operator")), {"older_than_days": 30}).approval
    services.vote(approval.pk, actor_of(make_user("approver", "sre", "security")), "approve")
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "pending"
    services.vote(approval.pk, actor_of(make_user("approver", "sre")), "approve")
    # Both-groups person moves to the security seat, the SRE takes the SRE seat.
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "approved"


def test_the_requester_never_counts_even_with_a_vote_row(admin, make_user, actor_of):
    Group.objects.get_or_create(name="sre")
    requester = make_user("operator", "approver", "sre")
    ApprovalPolicy.objects.create(operation=RISKY, quorum=1, group_quorum={"sre": 1})
    approval = invoke(RISKY, actor_of(requester), {"older_than_days": 30}).approval
    approval.votes.create(voter=requester, decision="approve")  # what vote() refuses to write
    assert not quorum_reached(approval)


def test_seat_matching_finds_an_assignment_when_greedy_would_not():
    assert _seats_filled(["sre", "security"], {1: {"sre", "security"}, 2: {"sre"}})
    assert not _seats_filled(["sre", "sre"], {1: {"sre", "security"}})
    assert _seats_filled([], {})


def test_weakening_a_group_requirement_waits(admin):
    Group.objects.get_or_create(name="security")
    policy = ApprovalPolicy.objects.create(operation=RISKY, quorum=2, group_quorum={"security": 2})
    assert save(admin, id=policy.pk, quorum=2, group_quorum={"security": 1}).status == "pending"
    assert save(admin, id=policy.pk, quorum=2, group_quorum={"security": 3}).status == "ok"


def test_through_the_policy_page_a_weaker_policy_waits_a_stricter_one_applies(client, make_user):
    user = make_user("admin")
    client.force_login(user)
    policy = ApprovalPolicy.objects.create(operation=RISKY, quorum=2)
    form = {"operation": RISKY, "scope": "", "requires_approval": "on", "quorum": "1", "expiry_hours": "24", "wait_minutes": "0"}
    response = client.post(f"/approvals/policies/{policy.pk}/", form, follow=True)
    approval = ApprovalRequest.objects.get(operation="approvals.save_policy")
    assert response.redirect_chain[-1][0] == f"/approvals/{approval.pk}/"
    assert "waiting" in response.content.decode()
    assert ApprovalPolicy.objects.get(pk=policy.pk).quorum == 2
    assert client.post(f"/approvals/policies/{policy.pk}/", {**form, "quorum": "4"}).status_code == 302
    assert ApprovalPolicy.objects.get(pk=policy.pk).quorum == 4
    assert client.post(f"/approvals/policies/{policy.pk}/delete/", follow=True).status_code == 200
    assert ApprovalPolicy.objects.filter(pk=policy.pk).exists()  # deleting it is weaker: pending too
    assert ApprovalRequest.objects.filter(operation="approvals.delete_policy", status="pending").count() == 1
