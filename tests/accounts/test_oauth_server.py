"""The console as the OAuth authorization server of MCP agents (docs/oauth.md), through its HTTP endpoints
in this process: registration (RFC 7591), the consent page, the token endpoint — and what each refuses.
The end-to-end flow with the SDK's client against a running console is tests/mcp/test_oauth.py."""

from __future__ import annotations

import json
import secrets
from urllib.parse import urlencode

import pytest
from django.test import Client
from oauth2_provider.models import AccessToken, Application, Grant, RefreshToken

from apps.audit.models import AuditEvent
from tests.support.oauth import FORM, REDIRECT_URI, Flow, hidden_inputs, issue_oauth_token, pkce, query_of, register


@pytest.fixture(autouse=True)
def registration_limit(settings):
    settings.OAUTH_REGISTRATION_RATE_LIMIT = "1000/m"  # this module registers many clients; one test lowers it


@pytest.fixture
def flow(client_as):
    def start(*roles: str, scope: str = "viewer operator") -> Flow:
        return Flow(client_as(*roles), scope)

    return start


# --- registration ---------------------------------------------------------------------------------


def test_registration_makes_a_public_client_that_can_do_nothing_until_a_user_consents(db):
    status, body = register(Client(), token_endpoint_auth_method="client_secret_basic", client_name="Cursor")
    assert status == 201
    assert body["token_endpoint_auth_method"] == "none" and "client_secret" not in body  # replaced: every client is public
    application = Application.objects.get(client_id=body["client_id"])
    assert application.client_type == "public" and application.user is None and not application.skip_authorization
    assert not AccessToken.objects.filter(application=application, user__isnull=False).exists()
    event = AuditEvent.objects.get(operation="accounts.register_agent")  # through the gateway, as the system
    assert (event.outcome, event.actor, event.target) == ("ok", "system", "Cursor")


@pytest.mark.parametrize("grants", [["client_credentials"], ["implicit"], ["password"], ["authorization_code", "implicit"]])
def test_registration_refuses_other_grants(grants, db):
    status, body = register(Client(), grant_types=grants)
    assert status == 400 and body["error"] == "invalid_client_metadata"


def test_registration_is_rate_limited_per_address(db, settings):
    settings.OAUTH_REGISTRATION_RATE_LIMIT = "2/h"
    address = f"2001:db8:{secrets.token_hex(2)}:{secrets.token_hex(2)}::1"  # a /64 of this test alone
    assert [register(Client(), remote_addr=address)[0] for _ in range(3)] == [201, 201, 429]
    refused = AuditEvent.objects.filter(operation="accounts.register_agent", outcome="denied")
    assert refused.count() == 1 and refused.get().params["limited_by"] == "address"  # as the token endpoint's (oauth_limits)
    assert (
        register(Client(), remote_addr=f"2001:db8:{secrets.token_hex(2)}:{secrets.token_hex(2)}::1")[0] == 201
    )  # another address is not held back


def test_registration_issues_no_management_token(db):
    """RFC 7592 (reading or changing a registration) is not offered: a client registers anew."""
    _, body = register(Client())
    assert "registration_access_token" not in body and "registration_client_uri" not in body
    assert Client().get(f"/oauth/register/{body['client_id']}/").status_code == 404
    assert not AccessToken.objects.exists()


@pytest.mark.parametrize(
    "uris",
    [[], ["javascript:alert(1)"], ["not a url"], ["http://attacker.example/cb"], ["http://127.0.0.1:9/cb", "http://10.0.0.5/cb"]],
    ids=["none", "javascript", "not a URL", "plain http elsewhere", "one of them plain http elsewhere"],
)
def test_registration_refuses_unusable_redirect_uris(uris, db):
    status, body = register(Client(), redirect_uris=uris)
    assert status == 400 and body["error"] in ("invalid_redirect_uri", "invalid_client_metadata")
    assert not Application.objects.exists()


# --- the consent page -----------------------------------------------------------------------------


def test_the_consent_page_shows_who_asks_for_what(flow):
    started = flow("viewer", scope="viewer operator")
    Application.objects.filter(client_id=started.client_id).update(name="Claude <b>desktop</b>")
    page = started.browser.get(started.url())
    text = page.content.decode()
    assert page.status_code == 200
    assert "Claude &lt;b&gt;desktop&lt;/b&gt;" in text and "<b>desktop" not in text  # escaped
    assert REDIRECT_URI in text and "viewer, operator" in text
    assert "operator (not roles of yours)" in text  # what the agent will not get
    assert 'name="csrfmiddlewaretoken"' in text and 'name="allow"' in text
    assert "<nav" in text  # the console's base template


def test_the_consent_page_needs_a_signed_in_person(db):
    _, body = register(Client())
    response = Client().get("/oauth/authorize/?" + urlencode({"client_id": body["client_id"], "response_type": "code"}))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_consenting_needs_the_csrf_token(flow):
    started = flow("viewer")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(started.browser.user)
    page = browser.get(started.url())
    form = {k: v for k, v in hidden_inputs(page.content.decode()).items() if k != "csrfmiddlewaretoken"}
    assert browser.post(started.url(), {**form, "allow": "1"}).status_code == 403
    assert not Grant.objects.exists()


def test_denying_stores_nothing_and_tells_the_client(flow):
    started = flow("operator")
    response = started.consent(allow=False)
    assert response.status_code == 302
    assert query_of(response["Location"]) == {"error": "access_denied", "state": "st4te"}
    assert not Grant.objects.exists() and not AuditEvent.objects.filter(operation="accounts.authorize_agent").exists()


# --- the code, the token, and their refusals ------------------------------------------------------


def test_a_consented_code_gives_a_token_bound_to_mcp_with_the_scopes_held(flow, settings):
    started = flow("viewer", scope="viewer operator")
    response = started.token(started.code())
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["access_token"].startswith("opa_") and body["refresh_token"].startswith("opr_")
    assert body["scope"] == "viewer"  # asked viewer and operator: a viewer consents to what they hold
    stored = AccessToken.objects.get(user__isnull=False)  # (the other is the registration's RFC 7592 token)
    assert stored.resource == [settings.MCP_RESOURCE_URL] and stored.token == ""  # only its SHA-256 is stored
    assert stored.user == started.browser.user
    event = AuditEvent.objects.get(operation="accounts.authorize_agent")
    assert (event.outcome, event.channel, event.actor) == ("ok", "web", started.browser.user.username)
    assert body["access_token"] not in str(vars(event)) and "code=" not in str(vars(event))


def test_a_wrong_pkce_verifier_is_refused(flow):
    started = flow("operator")
    response = started.token(started.code(), code_verifier=pkce()[0])
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.filter(user__isnull=False).exists()


def test_a_code_is_used_once(flow):
    started = flow("operator")
    code = started.code()
    assert started.token(code).status_code == 200
    again = started.token(code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("query", [{"code_challenge": ""}, {"code_challenge_method": "plain"}], ids=["no PKCE", "plain PKCE"])
def test_authorization_without_s256_pkce_is_refused(query, flow):
    started = flow("operator")
    url = started.url(**query)
    page = started.browser.get(url)
    if page.status_code == 302:  # refused before the consent page: back to the client with the error
        assert query_of(page["Location"])["error"] == "invalid_request"
    else:  # shown, but consenting issues no code
        response = started.browser.post(url, {**hidden_inputs(page.content.decode()), "allow": "1"})
        assert response.status_code in (400, 422) and "code=" not in response.get("Location", "")
    assert not Grant.objects.exists()


def test_a_redirect_uri_the_client_did_not_register_is_refused(flow):
    started = flow("operator")
    page = started.browser.get(started.url(redirect_uri="https://attacker.example/cb"))
    assert page.status_code == 400 and "Location" not in page  # never redirected to an unregistered URI
    tampered = started.consent(redirect_uri="https://attacker.example/cb")
    assert tampered.status_code == 400 and "Location" not in tampered
    assert not Grant.objects.exists()
    mismatch = started.token(started.code(), redirect_uri="http://127.0.0.1:9/other")
    assert mismatch.status_code == 400 and mismatch.json()["error"] in ("invalid_request", "invalid_grant")
    assert not AccessToken.objects.filter(user__isnull=False).exists()


def test_a_token_for_another_resource_is_refused(flow):
    started = flow("operator")
    page = started.browser.get(started.url(resource="https://elsewhere.example/mcp"))
    assert page.status_code == 200 and 'name="allow"' not in page.content.decode()  # shown as impossible
    tampered = started.consent(resource="https://elsewhere.example/mcp")
    assert tampered.status_code == 422 and not Grant.objects.exists()
    other = started.token(started.code(), resource="https://elsewhere.example/mcp")
    assert other.status_code == 400 and json.loads(other.content)["error"] == "invalid_target"


def test_scopes_cannot_be_escalated(flow):
    started = flow("viewer", scope="viewer")
    assert started.consent(scope="admin").status_code == 422  # tampered to a role the viewer lacks: nothing to consent to
    body = started.token(started.code(scope="viewer operator")).json()
    assert body["scope"] == "viewer"  # tampered to add operator: still what the viewer holds
    wider = started.refresh(body["refresh_token"], scope="viewer operator")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    same = started.refresh(body["refresh_token"])
    assert same.status_code == 200 and same.json()["scope"] == "viewer"


def test_implicit_password_and_client_credentials_grants_are_refused(flow):
    started = flow("operator")
    implicit = started.browser.get(started.url(response_type="token"))
    assert implicit.status_code in (302, 400) and "access_token" not in implicit.get("Location", "")
    user = started.browser.user
    for grant in (
        {"grant_type": "password", "username": user.username, "password": user.raw_password},
        {"grant_type": "client_credentials"},
    ):
        response = Client().post("/oauth/token/", urlencode({**grant, "client_id": started.client_id}), content_type=FORM)
        assert response.status_code in (400, 401) and "access_token" not in response.json(), grant
    assert not AccessToken.objects.filter(user__isnull=False).exists()


# --- the authorized-agents page -------------------------------------------------------------------


def test_the_agents_page_lists_ones_own_agents_and_revokes_them(client_as, make_user):
    browser = client_as("viewer")
    token, _ = issue_oauth_token(browser.user, ["viewer"], name="My agent")
    issue_oauth_token(make_user("operator"), ["operator"], name="Someone else's agent")
    page = browser.get("/accounts/agents/").content.decode()
    assert "My agent" in page and "Someone else" not in page
    assert browser.post(f"/accounts/agents/{token.application_id}/revoke/", {"user": browser.user.pk}).status_code == 302
    assert not AccessToken.objects.filter(pk=token.pk).exists() and not RefreshToken.objects.filter(user=browser.user).exists()
    event = AuditEvent.objects.get(operation="accounts.revoke_agent")
    assert (event.outcome, event.channel) == ("ok", "web")
