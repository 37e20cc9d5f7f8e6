"""The token endpoints an OAuth agent calls itself (docs/oauth.md), through HTTP in this process: every exchange
of a code or a refresh token at /oauth/token/ and every RFC 7009 revocation at /oauth/revoke/ is one audit event
naming the agent and the user — never holding the code, a token or the PKCE verifier — and DOT's answer is
sent as DOT sends it. The same with the SDK's client against a running console: tests/mcp/test_oauth.py."""

from __future__ import annotations

import hashlib

import pytest
from oauth2_provider.models import AccessToken, Grant, RefreshToken

from apps.accounts import actors
from apps.approvals import services as approvals
from apps.approvals.models import ApprovalRequest
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


ECHO = {"steps": 2, "step_seconds": 0, "message": "ran"}


def leave_work(access_token: str) -> tuple[Job, ApprovalRequest]:
    """What an agent leaves waiting through `access_token`: a queued job and an approval request."""
    agent = actors.actor_for_token(access_token)
    job = invoke("core.echo_job", agent, ECHO, channel="mcp").job
    approval = invoke("core.purge_jobs", agent, {"older_than_days": 30}, channel="mcp").approval
    assert job.status == Job.QUEUED and approval.status == ApprovalRequest.PENDING
    return job, approval


def family_of(body: dict) -> str:
    return str(RefreshToken.objects.get(token_checksum=hashlib.sha256(body["refresh_token"].encode()).hexdigest()).token_family)


def assert_ended_and_not_revived(job: Job, approval: ApprovalRequest, started: Flow, approver) -> None:
    """The job was cancelled and the request withdrawn; the same client authorized again revives neither."""
    job.refresh_from_db()
    approval.refresh_from_db()
    assert job.status == Job.CANCELLED and "the authorization it asked under is revoked" in job.error, job.error
    assert approval.status == ApprovalRequest.WITHDRAWN
    again = tokens_of(started)  # a new consent: another authorization of the same client
    run_job(str(job.pk))
    job.refresh_from_db()
    assert job.status == Job.CANCELLED and not JobLogLine.objects.filter(job=job).exists()
    with pytest.raises(approvals.VoteRefused, match="already withdrawn"):
        approvals.vote(approval.pk, approver, "approve")
    assert not Job.objects.filter(approval_id=approval.pk).exists()
    new_job = invoke("core.echo_job", actors.actor_for_token(again["access_token"]), ECHO, channel="mcp").job  # its own work runs
    run_job(str(new_job.pk))
    new_job.refresh_from_db()
    assert new_job.status == Job.SUCCEEDED and new_job.credential.endswith(family_of(again)), new_job.error


@pytest.mark.parametrize("which", ["refresh_token", "access_token"])
def test_giving_a_token_back_ends_the_work_of_that_authorization_and_a_new_consent_revives_none(which, flow, make_user, actor_of):
    """RFC 7009 at /oauth/revoke/: the authorization the token belongs to (its token family) is revoked, and the work
    the agent left waiting under it ends as on the agents page — its job cancelled, its pending request withdrawn,
    the counts in the revocation's event — while another live authorization of the same client keeps its own."""
    started = flow("operator")
    body, other = tokens_of(started), tokens_of(started)  # two consents to one client (two of the agent's sessions)
    job, approval = leave_work(body["access_token"])
    others_job, others_approval = leave_work(other["access_token"])
    app = AccessToken.objects.get(token_checksum=hashlib.sha256(body["access_token"].encode()).hexdigest()).application_id
    assert job.credential == approval.credential == f"oauth:{app}:{family_of(body)}" != others_job.credential

    assert started.revoke(body[which], token_type_hint=which).status_code == 200
    event = only_event(REVOKE)
    assert (event.outcome, event.params["revoked"]) == ("ok", which)
    assert (event.params["jobs_cancelled"], event.params["requests_withdrawn"]) == (1, 1)
    others_job.refresh_from_db()
    others_approval.refresh_from_db()
    assert (others_job.status, others_approval.status) == (Job.QUEUED, ApprovalRequest.PENDING)
    assert_ended_and_not_revived(job, approval, started, actor_of(make_user("approver")))


def test_a_rotated_refresh_token_presented_again_ends_the_work_of_its_authorization(flow, make_user, actor_of):
    """Rotation keeps the authorization (the family): work queued before a refresh runs after it. Presenting the
    rotated refresh token again makes DOT's reuse protection revoke the whole family: its waiting work ends too."""
    started = flow("operator")
    body = tokens_of(started)
    job, approval = leave_work(body["access_token"])
    earlier = invoke("core.echo_job", actors.actor_for_token(body["access_token"]), ECHO, channel="mcp").job
    rotated = started.refresh(body["refresh_token"])
    assert rotated.status_code == 200 and family_of(rotated.json()) == family_of(body)
    run_job(str(earlier.pk))
    assert Job.objects.get(pk=earlier.pk).status == Job.SUCCEEDED

    replayed = started.refresh(body["refresh_token"])
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
    assert actors.actor_for_token(rotated.json()["access_token"]) is None  # the whole family is revoked
    event = AuditEvent.objects.filter(operation=ISSUE).latest("seq")
    assert (event.outcome, event.params["jobs_cancelled"], event.params["requests_withdrawn"]) == ("failed", 1, 1)
    assert_holds_none_of(event, body["refresh_token"], rotated.json()["refresh_token"])
    assert_ended_and_not_revived(job, approval, started, actor_of(make_user("approver")))


@pytest.mark.parametrize("operation", [ISSUE, REVOKE])
def test_only_the_endpoints_run_the_token_operations(operation, make_user, actor_of):
    """A person — an admin too — or an agent cannot call them: they are the endpoints', run as the system."""
    params = {"client_id": "x", "uri": "/oauth/token/", "body": "grant_type=authorization_code&code=abc"}
    for actor in (actor_of(make_user("admin")), actor_of(make_user("operator"))):
        with pytest.raises(PermissionDenied):
            invoke(operation, actor, params)
    assert not AccessToken.objects.exists()
    assert [e.outcome for e in AuditEvent.objects.filter(operation=operation)] == ["denied", "denied"]
