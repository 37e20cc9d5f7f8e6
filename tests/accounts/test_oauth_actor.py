"""An OAuth access token (docs/oauth.md) resolves to the same Actor as an API token, through the same
per-process cache (apps/accounts/actors.py): its roles are its user's roles AND its consented scopes, and
revoking the agent, taking a role away or deactivating the user stops it within ACTOR_CACHE_SECONDS in
another process, at once in this one. The cache's clock is held by the test (as in test_actor_cache)."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from oauth2_provider.models import AccessToken

from apps.accounts import actors
from apps.accounts.oauth_server import AgentGrant
from apps.audit.models import AuditEvent
from apps.core.gateway import invoke
from tests.support.actors import roles_of_token
from tests.support.oauth import issue_oauth_token

User = get_user_model()

ELSEWHERE = {
    "revoked": lambda user, token: AccessToken.objects.filter(pk=token.pk)._raw_delete("default"),  # a bare DELETE: no signal here
    "role taken away": lambda user, token: User.groups.through.objects.filter(user=user, group__name="operator").delete(),
    "deactivated": lambda user, token: User.objects.filter(pk=user.pk).update(is_active=False),
}
ROLES_AFTER = {"revoked": None, "role taken away": {"viewer"}, "deactivated": None}


def test_an_oauth_token_is_an_actor_with_its_users_roles_and_its_scopes(make_user):
    user = make_user("operator", "viewer")
    token, raw = issue_oauth_token(user, ["viewer", "admin"], refresh=True)  # admin consented but not held: nothing
    actor = actors.actor_for_token(raw)
    assert isinstance(actor.token, AgentGrant) and actor.user == user
    assert actor.roles == {"viewer"}
    assert actor.has_perm("core.run_read_ops") and not actor.has_perm("core.run_write_ops")
    # what jobs and approval requests it starts keep: the client and the authorization (the token family)
    assert actor.credential == f"oauth:{token.application_id}:{token.refresh_token.token_family}"
    assert actor.rate_key == f"token:oauth{token.application_id}.{user.pk}"


@pytest.mark.parametrize(
    "resource", [[], ["https://elsewhere.example/mcp"]], ids=["unrestricted (no resource indicator)", "another resource"]
)
def test_a_token_not_bound_to_mcp_is_refused(resource, make_user):
    _, raw = issue_oauth_token(make_user("operator"), ["operator"], resource=resource)
    assert actors.actor_for_token(raw) is None


def test_an_expired_token_is_refused(make_user):
    _, raw = issue_oauth_token(make_user("operator"), ["operator"], expires_in=-1)
    assert actors.actor_for_token(raw) is None


def test_only_the_hash_is_stored(make_user):
    token, raw = issue_oauth_token(make_user("viewer"), ["viewer"])
    token.refresh_from_db()
    assert token.token == "" and raw not in token.token_checksum


@pytest.mark.parametrize("change", ELSEWHERE)
def test_an_oauth_tokens_actor_changes_within_the_bound_when_another_process_changes_it(change, clock, make_user):
    user = make_user("operator", "viewer")
    token, raw = issue_oauth_token(user, ["operator", "viewer"])
    assert roles_of_token(raw) == {"operator", "viewer"}
    ELSEWHERE[change](user, token)
    assert roles_of_token(raw) == {"operator", "viewer"}  # not seen by this process yet: no database read
    clock.pass_the_bound()
    assert roles_of_token(raw) == ROLES_AFTER[change]


@pytest.mark.parametrize("change", ELSEWHERE)
def test_an_oauth_tokens_actor_changes_at_once_when_this_process_changes_it(change, clock, make_user, actor_of):
    admin = actor_of(make_user("admin"))
    user = make_user("operator", "viewer")
    token, raw = issue_oauth_token(user, ["operator", "viewer"])
    assert roles_of_token(raw) == {"operator", "viewer"}
    if change == "revoked":
        invoke("accounts.revoke_agent", admin, {"application_id": token.application_id, "user_id": user.pk})
    else:
        roles, active = (["viewer"], True) if change == "role taken away" else (["operator", "viewer"], False)
        invoke("accounts.save_user", admin, {"id": user.pk, "username": user.username, "roles": roles, "is_active": active})
    assert roles_of_token(raw, cached_only=True) is None  # forgotten, with the clock still held
    assert roles_of_token(raw) == ROLES_AFTER[change]


def test_revoking_an_agent_is_an_audited_operation_of_its_user_only(make_user, actor_of):
    owner, other = make_user("viewer"), make_user("operator")
    token, raw = issue_oauth_token(owner, ["viewer"], name="Claude at home")
    with pytest.raises(Exception, match="your own agents"):
        invoke("accounts.revoke_agent", actor_of(other), {"application_id": token.application_id, "user_id": owner.pk})
    assert actors.actor_for_token(raw) is not None
    outcome = invoke("accounts.revoke_agent", actor_of(owner), {"application_id": token.application_id})
    assert outcome.result.tokens == 1 and outcome.result.client == "Claude at home"
    assert actors.actor_for_token(raw) is None
    events = AuditEvent.objects.filter(operation="accounts.revoke_agent")
    assert [e.outcome for e in events.order_by("seq")] == ["denied", "ok"]
    assert not any(raw in str(vars(e)) for e in events)


def test_an_oauth_token_cannot_issue_api_tokens_or_authorize_agents(make_user):
    user = make_user("operator")
    _, raw = issue_oauth_token(user, ["operator"])
    actor = actors.actor_for_token(raw)
    with pytest.raises(Exception, match="cannot issue tokens"):
        invoke("accounts.create_token", actor, {"name": "x", "scopes": ["operator"], "expires_in_days": 1})
    params = {
        "client_id": "x",
        "redirect_uri": "http://127.0.0.1:9/cb",
        "scopes": ["operator"],
        "resource": "http://x/mcp",
        "code_challenge": "a" * 43,
        "code_challenge_method": "S256",
    }
    with pytest.raises(Exception, match="signed-in person"):
        invoke("accounts.authorize_agent", actor, params)


def test_whoami_names_the_grant_not_the_secret(make_user):
    user = make_user("viewer")
    token, raw = issue_oauth_token(user, ["viewer"])
    result = invoke("accounts.whoami", actors.actor_for_token(raw), {}).result
    assert result.token == f"oauth:{token.application_id}/{token.pk}" and result.roles == ["viewer"]
    assert result.token_expires_at > timezone.now() + timedelta(minutes=30)
