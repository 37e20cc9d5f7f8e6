"""The token endpoints an OAuth agent calls itself (docs/oauth.md), through HTTP in this process: every exchange
of a code or a refresh token at /oauth/token/ and every RFC 7009 revocation at /oauth/revoke/ is one audit event
naming the agent and the user — never holding the code, a token or the PKCE verifier — and DOT's answer is
sent as DOT sends it. The same with the SDK's client against a running console: tests/mcp/test_oauth.py."""

from __future__ import annotations

import pytest
from oauth2_provider.models import AccessToken, Grant, RefreshToken

from apps.accounts import actors
from apps.audit.models import AuditEvent
from apps.core.errors import PermissionDenied
from apps.core.gateway import invoke, run_job
from apps.core.models import Job, JobLogLine
from tests.support.oauth import Flow, pkce

ISSUE, REVOKE = "accounts.issue_agent_token", "accounts.revoke_agent_token"


@pytest.fixture(autouse=True)
def registration_limit(settings):
    settings.OAUTH_REGISTRATION_RATE_LIMIT = "1000/m"


@pytest.fixture
def flow(client_as):
    def start(*roles: str, scope: str = "viewer operator") -> Flow:
        return Flow(client_as(*roles), scope)

    return start


def only_event(operation: str) -> AuditEvent:
    events = list(AuditEvent.objects.filter(operation=operation))
    assert len(events) == 1, [(e.operation, e.outcome, e.error) for e in events]
    return events[0]


def assert_holds_none_of(event: AuditEvent, *secrets: str) -> None:
    row = str(vars(event))
    for secret in secrets:
        assert secret not in row, f"{secret[:8]}... is in the audit event"


def token_rows() -> tuple:
    return (
        sorted(AccessToken.objects.filter(user__isnull=False).values_list("pk", flat=True)),
        sorted(RefreshToken.objects.values_list("pk", "revoked")),
        sorted(Grant.objects.values_list("pk", flat=True)),
    )


def tokens_of(started: Flow) -> dict:
    response = started.token(started.code())
    assert response.status_code == 200, response.content
    return response.json()


# --- issuing and refreshing ---------------------------------------------------------------------


def test_exchanging_a_code_is_one_audited_event_naming_the_agent_and_the_user(flow):
    started = flow("operator")
    code = started.code()
    response = started.token(code)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json" and response["Cache-Control"] == "no-store"  # DOT's answer
    body = response.json()
    assert set(body) >= {"access_token", "refresh_token", "token_type", "expires_in", "scope"}
    event = only_event(ISSUE)
    user = started.browser.user
    assert (event.outcome, event.channel, event.actor, event.target) == ("ok", "web", "system", started.client_id)
    assert event.params["client"] == "Test agent" and event.params["grant_type"] == "authorization_code"
    assert (event.params["user"], event.params["user_id"], event.params["scopes"]) == (user.username, user.pk, ["operator"])
    assert_holds_none_of(event, code, started.verifier, body["access_token"], body["refresh_token"])


def test_refreshing_is_one_audited_event_too(flow):
    started = flow("viewer")
    first = tokens_of(started)
    response = started.refresh(first["refresh_token"])
    assert response.status_code == 200 and response["Cache-Control"] == "no-store", response.content
    second = response.json()
    events = list(AuditEvent.objects.filter(operation=ISSUE).order_by("seq"))
    assert [(e.outcome, e.params["grant_type"]) for e in events] == [("ok", "authorization_code"), ("ok", "refresh_token")]
    assert events[1].params["user"] == started.browser.user.username and events[1].params["client"] == "Test agent"
    assert_holds_none_of(events[1], first["refresh_token"], second["refresh_token"], second["access_token"])


FAILED_EXCHANGES = {
    "a wrong PKCE verifier": lambda started: (started.code(), {"code_verifier": pkce()[0]}),
    "an unknown code": lambda started: ("not-a-code-" + pkce()[0], {}),
    "another client's id": lambda started: (started.code(), {"client_id": Flow(started.browser).client_id}),
}


@pytest.mark.parametrize("failure", FAILED_EXCHANGES)
def test_a_refused_exchange_is_audited_as_failed_holds_no_secret_and_changes_nothing(failure, flow):
    started = flow("operator")
    code, changed = FAILED_EXCHANGES[failure](started)
    before = token_rows()
    response = started.token(code, **changed)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant", response.content
    assert response["Cache-Control"] == "no-store"
    assert token_rows() == before
    event = only_event(ISSUE)
    assert (event.outcome, event.error.split(":")[0]) == ("failed", "invalid_grant")
    if failure == "a wrong PKCE verifier":  # the code was real: whose it was is named
        assert event.params["user"] == started.browser.user.username
    assert_holds_none_of(event, code, started.verifier, changed.get("code_verifier", started.verifier))


def test_a_code_used_twice_is_refused_the_second_time_and_audited(flow):
    started = flow("operator")
    code = started.code()
    body = started.token(code).json()
    before = token_rows()
    again = started.token(code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert token_rows() == before
    events = list(AuditEvent.objects.filter(operation=ISSUE).order_by("seq"))
    assert [e.outcome for e in events] == ["ok", "failed"] and events[1].error.startswith("invalid_grant")
    for event in events:
        assert_holds_none_of(event, code, started.verifier, body["access_token"], body["refresh_token"])


def test_a_revoked_refresh_token_is_refused_and_audited(flow):
    started = flow("operator")
    body = tokens_of(started)
    assert started.revoke(body["refresh_token"], token_type_hint="refresh_token").status_code == 200
    before = token_rows()
    response = started.refresh(body["refresh_token"])
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert token_rows() == before
    event = AuditEvent.objects.filter(operation=ISSUE).latest("seq")
    assert (event.outcome, event.params["grant_type"], event.params["user"]) == ("failed", "refresh_token", started.browser.user.username)
    assert_holds_none_of(event, body["refresh_token"], body["access_token"])


def test_a_malformed_request_is_answered_in_oauths_form_and_audited(flow):
    started = flow("operator")
    response = started.token(started.code(), grant_type="x" * 500)
    assert response.status_code == 400 and response.json()["error"] in ("unsupported_grant_type", "invalid_request")
    assert only_event(ISSUE).outcome == "failed"


# --- revocation (RFC 7009) ----------------------------------------------------------------------


def test_the_metadata_advertises_the_revocation_endpoint(client):
    server = client.get("/.well-known/oauth-authorization-server").json()
    assert server["revocation_endpoint"].endswith("/oauth/revoke/")
    assert server["revocation_endpoint_auth_methods_supported"] == ["none"]  # public clients: their client_id, no secret


@pytest.mark.parametrize("hint", ["access_token", "refresh_token", ""])
@pytest.mark.parametrize("which", ["access_token", "refresh_token"])
def test_a_public_client_gives_back_its_own_token_and_both_stop_working(which, hint, flow):
    started = flow("operator")
    body = tokens_of(started)
    assert actors.actor_for_token(body["access_token"]) is not None
    response = started.revoke(body[which], **({"token_type_hint": hint} if hint else {}))
    assert response.status_code == 200 and response.content == b""  # DOT's answer
    assert actors.actor_for_token(body["access_token"]) is None  # (the delete's signal cleared this process's cache)
    assert not AccessToken.objects.filter(user__isnull=False).exists()
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()  # one given back, the other goes with it
    assert started.refresh(body["refresh_token"]).json()["error"] == "invalid_grant"
    event = only_event(REVOKE)
    assert (event.outcome, event.actor, event.target, event.params["revoked"]) == ("ok", "system", started.client_id, which)
    assert event.params["user"] == started.browser.user.username and event.params["client"] == "Test agent"
    assert event.params["token_type_hint"] == hint and "uri" not in event.params and "body" not in event.params
    assert_holds_none_of(event, body["access_token"], body["refresh_token"])


@pytest.mark.parametrize("which", ["access_token", "refresh_token"])
def test_a_client_cannot_revoke_another_clients_token(which, flow):
    mine = flow("operator")
    body = tokens_of(mine)
    other = Flow(mine.browser)
    before = token_rows()
    response = other.revoke(body[which])
    assert response.status_code == 200  # RFC 7009 §2.2: said to anyone, whether the token was theirs or not
    assert token_rows() == before
    assert actors.actor_for_token(body["access_token"]) is not None
    assert mine.refresh(body["refresh_token"]).status_code == 200  # still the owner's to use
    event = only_event(REVOKE)
    assert (event.outcome, event.target) == ("denied", other.client_id)
    assert "another client's (Test agent" in event.error and "nothing was revoked" in event.error
    assert_holds_none_of(event, body["access_token"], body["refresh_token"])


def test_an_unknown_token_is_answered_200_and_audited_as_nothing_revoked(flow):
    started = flow("operator")
    body = tokens_of(started)
    before = token_rows()
    assert started.revoke("opa_not-a-token").status_code == 200
    assert token_rows() == before
    event = only_event(REVOKE)
    assert event.outcome == "ok" and event.params["revoked"].startswith("none")
    assert_holds_none_of(event, "opa_not-a-token", body["access_token"])


def test_revocation_refuses_an_unknown_client_and_a_request_without_a_token(flow):
    started = flow("operator")
    body = tokens_of(started)
    unknown = started.revoke(body["access_token"], client_id="nobody")
    assert unknown.status_code == 401 and unknown.json()["error"] == "invalid_client"
    assert started.revoke("").status_code == 400
    assert actors.actor_for_token(body["access_token"]) is not None
    events = list(AuditEvent.objects.filter(operation=REVOKE).order_by("seq"))
    assert [(e.outcome, e.error.split(":")[0]) for e in events] == [("denied", "invalid_client"), ("failed", "invalid_request")]
    for event in events:
        assert_holds_none_of(event, body["access_token"])


def test_giving_back_the_refresh_token_refuses_the_agents_queued_job_at_its_start(flow):
    """An agent with no live access token and no usable refresh token is revoked for its user (oauth_server.stored_grant):
    the job it queued is refused when the worker starts it, as for tokens revoked on the agents page or expired."""
    started = flow("operator")
    body = tokens_of(started)
    agent = actors.actor_for_token(body["access_token"])
    outcome = invoke("core.echo_job", agent, {"steps": 2, "step_seconds": 0, "message": "ran"}, channel="mcp")
    assert outcome.status == "queued"
    assert started.revoke(body["refresh_token"], token_type_hint="refresh_token").status_code == 200
    run_job(str(outcome.job.pk))
    job = Job.objects.get(pk=outcome.job.pk)
    assert job.status == Job.FAILED and "that requested this job was revoked" in job.error, job.error
    assert not JobLogLine.objects.filter(job=job).exists()  # nothing ran
    refused = AuditEvent.objects.get(channel="worker", request_id=job.request_id, operation="core.echo_job")
    assert (refused.outcome, refused.actor) == ("denied", started.browser.user.username)


@pytest.mark.parametrize("operation", [ISSUE, REVOKE])
def test_only_the_endpoints_run_the_token_operations(operation, make_user, actor_of):
    """A person — an admin too — or an agent cannot call them: they are the endpoints', run as the system."""
    params = {"client_id": "x", "uri": "/oauth/token/", "body": "grant_type=authorization_code&code=abc"}
    for actor in (actor_of(make_user("admin")), actor_of(make_user("operator"))):
        with pytest.raises(PermissionDenied):
            invoke(operation, actor, params)
    assert not AccessToken.objects.exists()
    assert [e.outcome for e in AuditEvent.objects.filter(operation=operation)] == ["denied", "denied"]
