"""Who is calling is cached per process (apps/accounts/actors.py): a token's actor and a user's roles.
A change made through the console is seen at once by the process that made it; a change made by
another process (here a bare UPDATE or DELETE, which no signal reports) within ACTOR_CACHE_SECONDS.
The cache's clock is held by the test and moved past the bound: no waiting, no timing.

Every change, for a token and for a session user: revocation (tokens only), a role taken away (for a
token, its scopes narrow with the user's roles: a token's own scopes cannot be edited), deactivation."""

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.accounts import actors
from apps.accounts.models import ApiToken
from apps.core.gateway import invoke
from tests.support.actors import roles_of_token

User = get_user_model()

# What another process does (no signal reaches this one), and what a token's actor is afterwards.
ELSEWHERE = {
    "revoked": lambda user, token: ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now()),
    "role taken away": lambda user, token: User.groups.through.objects.filter(user=user, group__name="operator").delete(),
    "deactivated": lambda user, token: User.objects.filter(pk=user.pk).update(is_active=False),
}
TOKEN_ROLES_AFTER = {"revoked": None, "role taken away": {"viewer"}, "deactivated": None}


@pytest.mark.parametrize("change", ELSEWHERE)
def test_a_tokens_actor_changes_within_the_bound_when_another_process_changes_it(change, clock, make_user, make_token):
    user = make_user("operator", "viewer")
    token, raw = make_token(user)
    assert roles_of_token(raw) == {"operator", "viewer"}
    ELSEWHERE[change](user, token)
    assert roles_of_token(raw) == {"operator", "viewer"}  # this process has not seen it yet: no database read
    clock.pass_the_bound()
    assert roles_of_token(raw) == TOKEN_ROLES_AFTER[change]


@pytest.mark.parametrize("change", ELSEWHERE)
def test_a_tokens_actor_changes_at_once_when_this_process_changes_it(change, clock, make_user, make_token, actor_of):
    admin = actor_of(make_user("admin"))
    user = make_user("operator", "viewer")
    token, raw = make_token(user)
    assert roles_of_token(raw) == {"operator", "viewer"}
    if change == "revoked":
        invoke("accounts.revoke_token", admin, {"id": token.pk})
    else:
        roles, active = (["viewer"], True) if change == "role taken away" else (["operator", "viewer"], False)
        invoke("accounts.save_user", admin, {"id": user.pk, "username": user.username, "roles": roles, "is_active": active})
    assert roles_of_token(raw, cached_only=True) is None  # forgotten, with the clock still held
    assert roles_of_token(raw) == TOKEN_ROLES_AFTER[change]


def test_a_session_users_role_taken_away_by_another_process_counts_within_the_bound(clock, client_as):
    client = client_as("viewer", "auditor")
    assert client.get("/audit/").status_code == 200
    User.groups.through.objects.filter(user=client.user, group__name="auditor").delete()
    assert client.get("/audit/").status_code == 200  # roles cached by this process
    clock.pass_the_bound()
    assert client.get("/audit/").status_code == 403


def test_a_session_user_deactivated_by_another_process_is_signed_out_at_once(clock, client_as):
    """The session's user row is read on every request (Django's auth middleware): no bound to wait for."""
    client = client_as("viewer", "auditor")
    assert client.get("/audit/").status_code == 200
    User.objects.filter(pk=client.user.pk).update(is_active=False)
    assert client.get("/audit/")["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("change", ["role taken away", "deactivated"])
def test_a_session_user_changed_by_this_process_counts_at_once(change, clock, client_as, make_user, actor_of):
    admin = actor_of(make_user("admin"))
    client = client_as("viewer", "auditor")
    assert client.get("/audit/").status_code == 200
    roles, active = (["viewer"], True) if change == "role taken away" else (["viewer", "auditor"], False)
    invoke("accounts.save_user", admin, {"id": client.user.pk, "username": client.user.username, "roles": roles, "is_active": active})
    response = client.get("/audit/")
    if change == "role taken away":
        assert response.status_code == 403
    else:
        assert response["Location"].startswith("/accounts/login/")


def test_a_tokens_actor_is_trusted_no_longer_than_the_roles_it_was_built_from(clock, make_user, make_token, actor_of):
    """The roles a token's actor carries may come from this process's roles cache (a session of the same user read
    them first): the token's actor must expire with them, not a whole bound after its own read."""
    bound = actors.settings.ACTOR_CACHE_SECONDS
    user = make_user("operator", "viewer")
    token, raw = make_token(user)
    assert actor_of(user).roles == {"operator", "viewer"}  # the user's roles cached at t0
    clock.now += 0.5 * bound
    ELSEWHERE["role taken away"](user, token)  # at t0 + 0.5: within the bound of that read
    clock.now += 0.4 * bound
    assert roles_of_token(raw) == {"operator", "viewer"}  # t0 + 0.9: the token read now, its roles from the cache
    clock.now += 0.6 * bound
    assert roles_of_token(raw) == {"viewer"}  # t0 + 1.5: a whole bound after the change


def test_a_change_made_here_while_this_process_reads_a_token_is_not_forgotten(clock, make_user, make_token, actor_of, monkeypatch):
    """Another thread of this process revokes the token between this thread's read and its caching of it."""
    admin = actor_of(make_user("admin"))
    token, raw = make_token(make_user("operator"))
    read = ApiToken.authenticate

    def read_then_revoke(raw_token):
        found = read(raw_token)
        invoke("accounts.revoke_token", admin, {"id": token.pk})
        return found

    monkeypatch.setattr(ApiToken, "authenticate", read_then_revoke)
    assert roles_of_token(raw) == {"operator"}  # read before the revocation
    assert roles_of_token(raw, cached_only=True) is None  # but not kept past it
