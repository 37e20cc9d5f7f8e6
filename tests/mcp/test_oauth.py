"""OAuth for agents against the console's real ASGI server (uvicorn), docs/oauth.md: the SDK's own client
with its OAuth provider (mcp.client.auth.OAuthClientProvider) discovers the console from a 401, registers
itself, sends a person's browser to the consent page — answered here like a browser: a signed-in session,
the form posted with its CSRF token — and calls tools with the token it gets; revoking the agent on the
console's page stops it. The authorization server's refusals are in tests/accounts/test_oauth_server.py."""

from __future__ import annotations

import asyncio
import time

import httpx2
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

from apps.accounts import actors
from apps.approvals.models import ApprovalRequest
from apps.approvals.services import VoteRefused, vote
from apps.audit.models import AuditEvent
from apps.core.models import Job
from tests.support import processes
from tests.support.oauth import REDIRECT_URI, Browser, MemoryStorage, issue_oauth_token, query_of
from tests.support.waiting import wait_for

from .conftest import post_raw

pytestmark = pytest.mark.django_db(transaction=True)

PING = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
VERSION = {"MCP-Protocol-Version": "2025-11-25"}
User = get_user_model()
AGENT_OPERATIONS = ["accounts.authorize_agent", "accounts.issue_agent_token", "accounts.revoke_agent"]
TOKEN_OPERATIONS = ["accounts.issue_agent_token", "accounts.revoke_agent_token"]


@pytest.fixture(scope="module")
def console(django_db_setup, django_db_blocker):
    """A console of this module's own: its per-address limits raised, as the tests register many clients and every
    agent calls the token endpoints from 127.0.0.1 (the limits themselves: tests/accounts/test_oauth_limits.py)."""
    raised = {"OAUTH_REGISTRATION_RATE_LIMIT": "1000/m", "OAUTH_TOKEN_RATE_LIMIT": "1000/m", "OAUTH_REVOKE_RATE_LIMIT": "1000/m"}
    with django_db_blocker.unblock():
        proc, url = processes.start_console(**raised)
    yield url
    proc.stop()


class Agent:
    """The SDK's MCP client with its OAuth provider; its browser step is a person's `Browser`."""

    def __init__(self, console: str, browser: Browser, *, name: str = "Test agent"):
        self.browser, self.storage, self.authorized = browser, MemoryStorage(), 0
        self.may_authorize = True
        self._location = ""
        metadata = OAuthClientMetadata(
            client_name=name,
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        )
        self.provider = OAuthClientProvider(
            console + "/mcp", metadata, self.storage, redirect_handler=self._open, callback_handler=self._callback
        )
        self.url = console + "/mcp"

    async def _open(self, authorization_url: str) -> None:
        if not self.may_authorize:
            raise PermissionError("the person will not authorize this agent again")
        response = await self.browser.consent(authorization_url)
        assert response.status_code == 302, response.text[:2000]
        self._location = response.headers["location"]
        self.authorized += 1

    async def _callback(self) -> AuthorizationCodeResult:
        query = query_of(self._location)
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"))

    async def call(self, tool: str, arguments: dict):
        http = create_mcp_http_client(auth=self.provider)
        async with http, Client(streamable_http_client(self.url, http_client=http)) as client:
            return await client.call_tool(tool, arguments)


async def signed_in(console: str, *roles: str):
    user = await sync_to_async(lambda: _user(roles))()
    browser = Browser(console)
    await browser.login(user)
    return user, browser


def _user(roles):
    import secrets

    from django.contrib.auth.models import Group

    password = secrets.token_urlsafe(12)
    user = User.objects.create_user(username=f"{'-'.join(roles)}-{secrets.token_hex(3)}", password=password)
    user.groups.set(Group.objects.filter(name__in=roles))
    user.raw_password = password
    return user


async def wait_until_refused(url: str, raw: str, what: str) -> httpx2.Response:
    """The console's web process trusts what it verified for ACTOR_CACHE_SECONDS (1 s): wait on the refusal."""
    deadline = time.monotonic() + 30
    while (response := await asyncio.to_thread(post_raw, url, PING, Authorization=f"Bearer {raw}", **VERSION)).status_code == 200:
        assert time.monotonic() < deadline, f"{what}: the token still worked after 30 s"
        await asyncio.sleep(0.2)
    return response


def test_metadata_and_the_401_that_points_to_it(console):
    with httpx2.Client(base_url=console, timeout=10) as http:
        resource = http.get("/.well-known/oauth-protected-resource/mcp").json()
        assert resource["resource"] == console + "/mcp" and resource["authorization_servers"] == [console]
        assert http.get("/.well-known/oauth-protected-resource").json() == resource
        server = http.get("/.well-known/oauth-authorization-server").json()
    assert server["issuer"] == console
    assert server["authorization_endpoint"] == console + "/oauth/authorize/" and server["token_endpoint"] == console + "/oauth/token/"
    assert server["registration_endpoint"] == console + "/oauth/register/"
    assert server["response_types_supported"] == ["code"]
    assert server["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert server["code_challenge_methods_supported"] == ["S256"]  # no "plain"
    assert server["token_endpoint_auth_methods_supported"] == ["none"]  # public clients
    assert server["revocation_endpoint"] == console + "/oauth/revoke/"  # RFC 7009
    assert server["revocation_endpoint_auth_methods_supported"] == ["none"]
    assert "introspection_endpoint" not in server
    assert set(server["scopes_supported"]) == {"viewer", "operator", "auditor", "admin"}
    refused = post_raw(console + "/mcp", PING, **VERSION)
    assert refused.status_code == 401
    assert f'resource_metadata="{console}/.well-known/oauth-protected-resource/mcp"' in refused.headers["WWW-Authenticate"]


async def test_the_sdk_client_is_authorized_by_a_person_calls_tools_and_stops_when_revoked(console):
    user, browser = await signed_in(console, "operator", "viewer")
    agent = Agent(console, browser, name="Claude on a laptop")
    try:
        result = await agent.call("accounts_whoami", {})
        assert not result.is_error, result.content
        assert result.structured_content["user"] == user.username
        assert sorted(result.structured_content["roles"]) == ["operator", "viewer"]  # asked all four; holds two
        assert result.structured_content["token"].startswith("oauth:")
        assert agent.authorized == 1 and agent.storage.tokens.scope.split() == ["operator", "viewer"]
        assert not (await agent.call("core_health", {"include_workers": False})).is_error
        assert agent.authorized == 1  # the stored token serves the next session: no second consent
        raw = agent.storage.tokens.access_token

        page = await browser.http.get("/accounts/agents/")
        assert page.status_code == 200 and "Claude on a laptop" in page.text
        application_id = agent.storage.client.client_id
        pk = await sync_to_async(lambda: _application_pk(application_id))()
        revoked = await browser.post_form(f"/accounts/agents/{pk}/revoke/", "/accounts/agents/")
        assert revoked.status_code == 302

        assert (await wait_until_refused(agent.url, raw, "revoked")).status_code == 401
        agent.may_authorize = False  # the next call meets a 401, and the person does not consent again
        with pytest.raises(Exception):
            await agent.call("core_health", {"include_workers": False})
        events = await sync_to_async(lambda: list(AuditEvent.objects.filter(operation__in=AGENT_OPERATIONS)))()
        assert sorted((e.operation, e.outcome, e.channel) for e in events) == [
            ("accounts.authorize_agent", "ok", "web"),
            ("accounts.issue_agent_token", "ok", "web"),  # the SDK's exchange of its code
            ("accounts.revoke_agent", "ok", "web"),
        ]
        everything = await sync_to_async(lambda: [str(vars(e)) for e in AuditEvent.objects.all()])()
        assert not any(raw in row or "opa_" in row or "opr_" in row for row in everything)  # no token in the audit log
    finally:
        await browser.aclose()


async def test_the_sdk_client_refreshes_and_gives_its_token_back_each_audited_once(console):
    """The SDK refreshes when its access token's time is over, at the token endpoint; then the agent gives its
    refresh token back at the metadata's revocation_endpoint (RFC 7009; the SDK has no call for it): its access
    token stops working too. Each exchange and the revocation is one audit event, holding no token."""
    user, browser = await signed_in(console, "operator")
    agent = Agent(console, browser, name="Refreshing agent")
    try:
        assert not (await agent.call("accounts_whoami", {})).is_error
        first = agent.storage.tokens
        agent.provider.context.token_expiry_time = time.time() - 1  # as if its hour had passed
        assert not (await agent.call("accounts_whoami", {})).is_error
        second = agent.storage.tokens
        assert agent.authorized == 1 and (second.access_token, second.refresh_token) != (first.access_token, first.refresh_token)
        async with httpx2.AsyncClient(timeout=10) as http:
            endpoint = (await http.get(console + "/.well-known/oauth-authorization-server")).json()["revocation_endpoint"]
            form = {"token": second.refresh_token, "token_type_hint": "refresh_token", "client_id": agent.storage.client.client_id}
            given_back = await http.post(endpoint, data=form)
        assert given_back.status_code == 200, given_back.text
        assert (await wait_until_refused(agent.url, second.access_token, "given back")).status_code == 401

        def events():
            return [(e.operation, e.outcome, e.params.get("grant_type") or e.params.get("revoked"), e.params["user"], str(vars(e)))
                    for e in AuditEvent.objects.filter(operation__in=TOKEN_OPERATIONS).order_by("seq")]  # fmt: skip

        found = await sync_to_async(events)()
        assert [row[:4] for row in found] == [
            ("accounts.issue_agent_token", "ok", "authorization_code", user.username),
            ("accounts.issue_agent_token", "ok", "refresh_token", user.username),
            ("accounts.revoke_agent_token", "ok", "refresh_token", user.username),
        ]
        tokens = (first.access_token, first.refresh_token, second.access_token, second.refresh_token)
        assert not any(raw in row[4] for raw in tokens for row in found)
    finally:
        await browser.aclose()


def _application_pk(client_id: str) -> int:
    from oauth2_provider.models import Application

    return Application.objects.get(client_id=client_id).pk


async def test_a_viewers_agent_cannot_call_an_operator_tool(console):
    _, browser = await signed_in(console, "viewer")
    agent = Agent(console, browser)
    try:
        assert not (await agent.call("core_health", {"include_workers": False})).is_error
        assert agent.storage.tokens.scope == "viewer"  # asked viewer operator auditor admin: got what the viewer holds
        result = await agent.call("core_echo_job", {"steps": 1})
        assert result.is_error and "may not run core.echo_job" in result.content[0].text
    finally:
        await browser.aclose()


def test_deactivating_the_user_stops_the_agent(console, make_user):
    user = make_user("operator", "viewer")
    _, raw = issue_oauth_token(user, ["operator"], resource=[console + "/mcp"])
    assert post_raw(console + "/mcp", PING, Authorization=f"Bearer {raw}", **VERSION).status_code == 200
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert asyncio.run(wait_until_refused(console + "/mcp", raw, "deactivated")).status_code == 401


def test_taking_a_role_away_takes_its_tools_from_the_agent(console, make_user):
    user = make_user("operator", "viewer")
    _, raw = issue_oauth_token(user, ["operator", "viewer"], resource=[console + "/mcp"])

    def tools() -> str:
        response = post_raw(console + "/mcp", PING, Authorization=f"Bearer {raw}", **VERSION)
        assert response.status_code == 200
        return response.text

    assert "core_echo_job" in tools()
    User.groups.through.objects.filter(user=user, group__name="operator").delete()
    wait_for(lambda: "core_echo_job" not in tools(), timeout=30, what="the operator tools leaving the agent's list")
    assert "core_health" in tools()  # still a viewer


def test_a_token_for_another_resource_or_none_is_refused(console, make_user):
    user = make_user("operator")
    for resource in ([], ["https://elsewhere.example/mcp"], [console + "/other"]):
        _, raw = issue_oauth_token(user, ["operator"], resource=resource)
        refused = post_raw(console + "/mcp", PING, Authorization=f"Bearer {raw}", **VERSION)
        assert refused.status_code == 401, resource
    _, raw = issue_oauth_token(user, ["operator"], resource=[console + "/mcp"])
    assert post_raw(console + "/mcp", PING, Authorization=f"Bearer {raw}", **VERSION).status_code == 200


def _approve_and_wait(request_id: int) -> Job:
    """Another person approves in the web UI; the approved job runs on the real worker: the job once finished."""
    approver = _user(("approver",))
    vote(request_id, actors.Actor.for_user(approver), "approve")
    return wait_for(lambda: Job.objects.filter(approval_id=request_id, status__in=Job.FINISHED).first(), timeout=60,
                    what="the approved job to end on the worker")  # fmt: skip


async def test_an_agents_approved_request_runs_on_the_worker_as_the_agent_and_is_withdrawn_when_it_is_revoked(console, celery_worker):
    """The whole path: the SDK agent requests a risky call; approved, the worker runs it in the agent's name. A second
    request still waits when the person revokes the agent on the console's page: it is withdrawn, no vote can
    approve it any more, nothing runs."""
    _, browser = await signed_in(console, "operator")
    agent = Agent(console, browser, name="Claude on a laptop")
    try:
        first = await agent.call("core_purge_jobs", {"older_than_days": 30})
        second = await agent.call("core_purge_jobs", {"older_than_days": 60})
        assert first.structured_content["status"] == second.structured_content["status"] == "pending_approval"
        ran = await sync_to_async(_approve_and_wait)(first.structured_content["approval_request_id"])
        assert ran.status == Job.SUCCEEDED, ran.error

        pk = await sync_to_async(lambda: _application_pk(agent.storage.client.client_id))()
        assert (await browser.post_form(f"/accounts/agents/{pk}/revoke/", "/accounts/agents/")).status_code == 302
    finally:
        await browser.aclose()
    withdrawn = await ApprovalRequest.objects.aget(pk=second.structured_content["approval_request_id"])
    assert withdrawn.status == ApprovalRequest.WITHDRAWN
    with pytest.raises(VoteRefused, match="already withdrawn"):
        await sync_to_async(_approve_and_wait)(withdrawn.pk)
    revoked = await AuditEvent.objects.aget(operation="accounts.revoke_agent")
    assert (revoked.params["requests_withdrawn"], revoked.params["jobs_cancelled"]) == (1, 0)
    events = await sync_to_async(lambda: list(AuditEvent.objects.filter(operation="core.purge_jobs", channel="worker").order_by("seq")))()
    agent_named = f"Claude on a laptop (OAuth agent #{pk})"
    assert [(e.outcome, e.token) for e in events] == [("ok", agent_named)]
    assert not await Job.objects.filter(approval_id=withdrawn.pk).aexists()
