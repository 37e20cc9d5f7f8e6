"""Who can approve is a guard: giving someone approval power (approver or admin role, a team that
fills a policy's group seat) or taking over an account that has it waits for another person's
approval — admins included, through the web page as through the gateway. Other user changes run at once."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from apps.approvals import services
from apps.core.errors import PermissionDenied
from apps.core.gateway import invoke
from tests.support.approving import approve_and_run

User = get_user_model()


@pytest.fixture
def admin(make_user, actor_of):
    return actor_of(make_user("admin", "approver"))


def test_a_new_approver_waits_for_another_person(admin, make_user, actor_of):
    params = {"username": "mallory", "roles": ["approver"], "password": "a-long-Passw0rd!"}
    outcome = invoke("accounts.save_user", admin, params)
    assert outcome.status == "pending"
    assert not User.objects.filter(username="mallory").exists()  # nothing yet
    plan = outcome.approval.plan
    assert plan["lowers"] == ["gives role:approver"] and plan["password"] == "replaced"
    assert "a-long-Passw0rd!" not in str(plan) and "a-long-Passw0rd!" not in str(outcome.approval.params_redacted)
    with pytest.raises(PermissionDenied, match="own request"):
        services.vote(outcome.approval.pk, admin, "approve")
    approve_and_run(outcome.approval, actor_of(make_user("approver")))
    assert set(User.objects.get(username="mallory").groups.values_list("name", flat=True)) == {"approver"}


@pytest.mark.parametrize(
    "change, why",
    [
        ({"password": "an-0ther-Passw0rd!"}, "sets a new password on an account that can approve"),
        ({"teams": ["security"]}, "gives team:security"),
        ({"roles": ["approver", "admin"]}, "gives role:admin"),
    ],
)
def test_taking_over_or_widening_an_approver_waits(admin, make_user, change, why):
    victim = make_user("approver")
    params = {"id": victim.pk, "username": victim.username, "roles": ["approver"], **change}
    outcome = invoke("accounts.save_user", admin, params)
    assert outcome.status == "pending" and outcome.approval.plan["lowers"] == [why]
    victim.refresh_from_db()
    assert victim.check_password(victim.raw_password)
    assert not Group.objects.filter(name="security").exists() or not victim.groups.filter(name="security").exists()


def test_other_user_changes_run_at_once(admin, make_user):
    assert invoke("accounts.save_user", admin, {"username": "vic", "roles": ["viewer"], "password": "a-long-Passw0rd!"}).status == "ok"
    approver = make_user("approver")
    # Taking approval power away raises the guard: immediate.
    outcome = invoke("accounts.save_user", admin, {"id": approver.pk, "username": approver.username, "roles": ["viewer"]})
    assert outcome.status == "ok"
    assert list(approver.groups.values_list("name", flat=True)) == ["viewer"]


def test_the_users_page_says_the_grant_waits(client_as, make_user):
    client = client_as("admin")
    response = client.post(
        "/accounts/users/new/",
        {"username": "eve", "email": "", "roles": ["approver"], "password": "a-long-Passw0rd!", "is_active": "on"},
    )
    assert response.status_code == 302 and "/approvals/" in response["Location"]
    assert not User.objects.filter(username="eve").exists()
