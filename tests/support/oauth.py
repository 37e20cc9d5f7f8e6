"""OAuth for agents in tests (docs/oauth.md): a person's browser that signs in and answers the consent
page like a browser would, the SDK client's token storage, a token issued straight into the
database (for the cache tests, which need no authorization round trip), and one authorization through
the endpoints in this process (`Flow`: register, consent, exchange, refresh, revoke)."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import secrets
import uuid
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
from django.conf import settings
from django.test import Client
from django.utils import timezone
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from apps.accounts.oauth_server import new_access_token, new_refresh_token

REDIRECT_URI = "http://127.0.0.1:9/callback"  # the agent's loopback listener; never reached (the code is read off the redirect)


class _Inputs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("type") == "hidden" and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""


def hidden_inputs(html: str) -> dict[str, str]:
    parser = _Inputs()
    parser.feed(html)
    return parser.fields


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


class Browser:
    """A person at the console: a session cookie, pages read, forms posted with their CSRF token."""

    def __init__(self, base_url: str):
        self.http = httpx2.AsyncClient(base_url=base_url, follow_redirects=False, timeout=30)
        self.consents = 0

    async def login(self, user) -> None:
        page = await self.http.get("/accounts/login/")
        form = {
            "csrfmiddlewaretoken": hidden_inputs(page.text)["csrfmiddlewaretoken"],
            "username": user.username,
            "password": user.raw_password,
        }
        response = await self.http.post("/accounts/login/", data=form)
        assert response.status_code == 302, response.text[:500]

    async def consent_page(self, authorize_url: str) -> httpx2.Response:
        return await self.http.get(authorize_url)

    async def consent(self, authorize_url: str, *, allow: bool = True, **tampered: str) -> httpx2.Response:
        """GET the authorize URL, then submit its form as shown (allow or deny), some hidden fields changed."""
        page = await self.consent_page(authorize_url)
        assert page.status_code == 200, page.text[:2000]
        form = {**hidden_inputs(page.text), **tampered}
        if allow:
            form["allow"] = "1"
        self.consents += 1
        return await self.http.post(authorize_url, data=form)

    async def post_form(self, path: str, page_path: str, **data: str) -> httpx2.Response:
        """Submit a form of `page_path` (its CSRF token) to `path`."""
        page = await self.http.get(page_path)
        return await self.http.post(path, data={"csrfmiddlewaretoken": hidden_inputs(page.text)["csrfmiddlewaretoken"], **data})

    async def aclose(self) -> None:
        await self.http.aclose()


class MemoryStorage:
    """The SDK's TokenStorage, in memory."""

    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, client_info):
        self.client = client_info


def issue_oauth_token(
    user,
    scopes: list[str],
    *,
    resource: list[str] | None = None,
    name: str = "test agent",
    expires_in: int = 3600,
    application=None,
    refresh: bool = False,
):
    """An OAuth access token of a public client, as if the user had consented: (AccessToken row, raw token).
    A new client unless `application` is given (the same agent authorized again: another authorization, another
    token family); with `refresh`, the refresh token the token endpoint issues beside it too (its family)."""
    from oauth2_provider.models import get_access_token_model, get_application_model, get_refresh_token_model, set_token_value

    if application is None:
        application = get_application_model().objects.create(
            name=name,
            client_id=secrets.token_urlsafe(16),
            client_type="public",
            authorization_grant_type="authorization-code",
            redirect_uris=REDIRECT_URI,
            client_secret="",
        )
    raw = new_access_token()
    token = get_access_token_model()(
        user=user,
        application=application,
        scope=" ".join(scopes),
        expires=timezone.now() + timedelta(seconds=expires_in),
        resource=[settings.MCP_RESOURCE_URL] if resource is None else resource,
    )
    set_token_value(token, raw)
    token.save()
    if refresh:
        refresh_token = get_refresh_token_model()(
            user=user, application=application, access_token=token, resource=token.resource, token_family=uuid.uuid4()
        )  # a consent's own token family, as the token endpoint gives one to the refresh token of a code exchange
        set_token_value(refresh_token, new_refresh_token())
        refresh_token.save()
    return token, raw


# --- one authorization through the endpoints in this process (the Django test client) ---

FORM = "application/x-www-form-urlencoded"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def register(client: Client, **metadata) -> tuple[int, dict]:
    body = {"client_name": "Test agent", "redirect_uris": [REDIRECT_URI], "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none", **metadata}  # fmt: skip
    remote = metadata.pop("remote_addr", None) or "127.0.0.1"
    body.pop("remote_addr", None)
    response = Client().post("/oauth/register/", json.dumps(body), content_type="application/json", REMOTE_ADDR=remote)
    return response.status_code, response.json()


def new_address() -> str:
    """A client address of its own (a /64 of the IPv6 documentation range): the endpoints' per-address limits
    count each test's client apart from every other's in the same window (Redis is not emptied between tests)."""
    return str(ipaddress.ip_address(f"2001:db8:{secrets.token_hex(2)}:{secrets.token_hex(2)}::1"))  # as the audit writes it


class Flow:
    """One authorization: a registered client, a PKCE pair, and the person's signed-in browser; the client calls
    the token endpoints from `address` (one of its own unless given)."""

    def __init__(self, browser: Client, scope: str = "viewer operator", address: str | None = None):

        self.browser = browser
        self.address = address or new_address()
        status, self.registration = register(browser)
        assert status == 201, self.registration
        self.client_id = self.registration["client_id"]
        self.verifier, challenge = pkce()
        self.query = {"response_type": "code", "client_id": self.client_id, "redirect_uri": REDIRECT_URI, "scope": scope,
                      "state": "st4te", "code_challenge": challenge, "code_challenge_method": "S256",
                      "resource": settings.MCP_RESOURCE_URL}  # fmt: skip

    def url(self, **changed) -> str:
        return "/oauth/authorize/?" + urlencode({**self.query, **changed})

    def consent(self, *, allow: bool = True, query: dict | None = None, **tampered):
        url = self.url(**(query or {}))
        page = self.browser.get(url)
        assert page.status_code == 200, page.content[:2000]
        form = {**hidden_inputs(page.content.decode()), **tampered}
        if allow:
            form["allow"] = "1"
        return self.browser.post(url, form)

    def code(self, **tampered) -> str:
        response = self.consent(**tampered)
        assert response.status_code == 302, response.content[:2000]
        query = query_of(response["Location"])
        assert query["state"] == "st4te"
        return query["code"]

    def token(self, code: str, **changed):
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "client_id": self.client_id,
                "code_verifier": self.verifier, "resource": settings.MCP_RESOURCE_URL, **changed}  # fmt: skip
        return Client().post("/oauth/token/", urlencode(data), content_type=FORM, REMOTE_ADDR=self.address)

    def refresh(self, refresh_token: str, **changed):
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": self.client_id, **changed}
        return Client().post("/oauth/token/", urlencode(data), content_type=FORM, REMOTE_ADDR=self.address)

    def revoke(self, token: str, **changed):
        """RFC 7009: the client gives a token back (a public client: its client_id, no secret)."""
        data = {"token": token, "client_id": self.client_id, **changed}
        return Client().post("/oauth/revoke/", urlencode(data), content_type=FORM, REMOTE_ADDR=self.address)
