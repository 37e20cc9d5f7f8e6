"""The rate limits of the token and revocation endpoints (docs/oauth.md, "Rate limits"): per client address at both,
per client_id at the token endpoint. A refused request is answered 429 in OAuth's form, runs nothing, and only the
first refusal of a key in a window is audited, without a secret. Real Redis (django-ratelimit's windows, its clock
held still: `window`) and PostgreSQL; low limits set per test."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import pytest
from django.test import Client
from oauth2_provider.models import Grant

from apps.accounts import actors
from apps.audit.models import AuditEvent
from tests.support.oauth import FORM, REDIRECT_URI, Flow, new_address, pkce

from .test_oauth_tokens import ISSUE, REVOKE, assert_holds_none_of, token_rows, tokens_of


@pytest.fixture(autouse=True)
def limits(settings, window):
    settings.OAUTH_REGISTRATION_RATE_LIMIT = "1000/m"
    settings.OAUTH_TOKEN_RATE_LIMIT = settings.OAUTH_TOKEN_CLIENT_RATE_LIMIT = settings.OAUTH_REVOKE_RATE_LIMIT = "1000/m"
    return settings


@pytest.fixture
def flow(client_as):
    def start(*roles: str, address: str | None = None) -> Flow:
        return Flow(client_as(*roles), "viewer operator", address=address)

    return start


def limited(endpoint: str) -> list[AuditEvent]:
    """The audit events of refusals by a rate limit (not those of the operation itself)."""
    return list(AuditEvent.objects.filter(operation=endpoint, params__has_key="limited_by").order_by("seq"))


def assert_slowed_down(response, whose: str) -> None:
    assert response.status_code == 429, response.content
    body = response.json()
    assert body["error"] == "slow_down" and whose in body["error_description"], body
    assert int(response["Retry-After"]) >= 1 and response["Cache-Control"] == "no-store"
    assert "access_token" not in body


def guess(started: Flow, address: str | None = None, **changed):
    """A token request with a code that is no code (answered invalid_grant while under the limits); HTTP_* items
    of `changed` are headers, the others form fields."""
    headers = {k: changed.pop(k) for k in list(changed) if k.startswith("HTTP_")}
    data = {"grant_type": "authorization_code", "code": "guess-" + pkce()[0], "redirect_uri": REDIRECT_URI,
            "client_id": started.client_id, "code_verifier": pkce()[0], **changed}  # fmt: skip
    return Client().post("/oauth/token/", urlencode(data), content_type=FORM, REMOTE_ADDR=address or started.address, **headers)


# --- the token endpoint -----------------------------------------------------------------------------


def test_the_n_plus_first_token_request_from_one_address_is_refused_and_nothing_is_issued(flow, limits):
    limits.OAUTH_TOKEN_RATE_LIMIT = "3/m"
    started = flow("operator")
    assert [guess(started).status_code for _ in range(3)] == [400, 400, 400]
    code = started.code()
    before = token_rows()

    refused = started.token(code)  # a real code, with its verifier: over the limit all the same
    assert_slowed_down(refused, "from this address")
    assert token_rows() == before and Grant.objects.filter(code=code).exists()  # not issued, the code not spent
    assert [e.outcome for e in AuditEvent.objects.filter(operation=ISSUE, params__has_key="grant_type")] == ["failed"] * 3

    elsewhere = Flow(started.browser, address=new_address())  # another client's agent, from another address
    assert tokens_of(elsewhere)["access_token"]
    started.address = new_address()  # the same client's code, now sent from another address: not held back
    moved = started.token(code)
    assert moved.status_code == 200, moved.content
    assert actors.actor_for_token(moved.json()["access_token"]) is not None


def test_a_clients_spent_failures_hold_back_the_addresses_that_failed_never_its_agents(flow, limits):
    """The per-client limit counts failed token requests only; once they are spent it refuses the addresses that
    failed for the client in the window (each gets one wrong guess), never one that did not: whoever knows a
    client_id (it is no secret) cannot lock the client's agents out of their tokens."""
    limits.OAUTH_TOKEN_CLIENT_RATE_LIMIT = "3/m"
    started = flow("operator")
    assert tokens_of(started)["access_token"]
    one, two, fresh = new_address(), new_address(), new_address()
    # The success spent nothing: the third failure (again from `one`) is still answered, and spends the last.
    assert [guess(started, one).status_code, guess(started, two).status_code, guess(started, one).status_code] == [400, 400, 400]
    code = started.code()
    before = token_rows()

    assert_slowed_down(guess(started, one), "for this client")
    assert_slowed_down(guess(started, two), "for this client")
    basic = base64.b64encode(f"{started.client_id}:".encode()).decode()  # the client named by HTTP Basic instead
    assert_slowed_down(guess(started, two, client_id="", HTTP_AUTHORIZATION=f"Basic {basic}"), "for this client")
    assert guess(started, fresh).status_code == 400  # an address that had not failed: one wrong guess...
    assert_slowed_down(guess(started, fresh), "for this client")  # ...then held back too
    assert token_rows() == before and Grant.objects.filter(code=code).exists()

    mine = started.token(code)  # the client's own agent, from its address, which did not fail: not held back
    assert mine.status_code == 200, mine.content
    other = flow("operator", address=one)  # another client, from an address that failed for the first one
    assert tokens_of(other)["access_token"]


def test_refusals_are_audited_once_per_key_and_window_and_hold_no_secret(flow, limits):
    """A flood from one address, then one spread over addresses against one client: one event each, whatever the
    count of refusals; requests the address limit refused did not count against the client's."""
    limits.OAUTH_TOKEN_RATE_LIMIT, limits.OAUTH_TOKEN_CLIENT_RATE_LIMIT = "2/m", "5/m"
    started = flow("operator")
    body = tokens_of(started)  # 1 of the client's 5, 1 of the address's 2
    code = started.code()
    secret = "s3cret-" + pkce()[0]
    basic = base64.b64encode(f"{started.client_id}:{secret}".encode()).decode()
    held = [code, started.verifier, body["access_token"], body["refresh_token"], secret, basic]
    flood = {"code": code, "code_verifier": started.verifier, "client_secret": secret, "refresh_token": body["refresh_token"]}

    assert guess(started, **flood).status_code == 401  # invalid_client: the address's 2nd request, the client's 1st failure
    for _ in range(10):
        assert_slowed_down(guess(started, HTTP_AUTHORIZATION=f"Basic {basic}", **flood), "from this address")
    for _ in range(3):  # the client's 2nd, 3rd and 4th failures: the address's refusals were not counted against it
        assert guess(started, new_address()).status_code == 400
    for spent in range(4):  # the 5th spends the client's failures; then each address gets one wrong guess
        address = new_address()
        assert guess(started, address, **flood).status_code == 401
        if spent:
            assert_slowed_down(guess(started, address, **flood), "for this client")

    events = limited(ISSUE)
    assert [(e.outcome, e.params["limited_by"], e.target) for e in events] == [
        ("denied", "address", started.client_id),
        ("denied", "client_id", started.client_id),
    ]
    assert events[0].client_ip == started.address and events[0].actor == "system"
    assert "rate limited" in events[0].error and "2/m" in events[0].error
    assert Grant.objects.filter(code=code).exists()
    for event in AuditEvent.objects.all():
        assert_holds_none_of(event, *held)


# --- the revocation endpoint -----------------------------------------------------------------------


def test_the_revocation_endpoint_is_limited_per_address_and_revokes_nothing_when_refused(flow, limits):
    limits.OAUTH_REVOKE_RATE_LIMIT = "2/m"
    started = flow("operator")
    body = tokens_of(started)
    assert [started.revoke(f"opa_not-a-token-{n}").status_code for n in range(2)] == [200, 200]
    before = token_rows()
    for _ in range(5):
        assert_slowed_down(started.revoke(body["access_token"]), "from this address")
    assert token_rows() == before and actors.actor_for_token(body["access_token"]) is not None  # nothing revoked
    events = limited(REVOKE)
    assert [(e.outcome, e.params["limited_by"], e.client_ip) for e in events] == [("denied", "address", started.address)]
    assert_holds_none_of(events[0], body["access_token"], body["refresh_token"])

    assert started.refresh(body["refresh_token"]).status_code == 200  # the token endpoint counts apart
    elsewhere = Flow(started.browser, address=new_address())
    assert tokens_of(elsewhere) and elsewhere.revoke("opa_not-a-token").status_code == 200  # another address: not held back


# --- under the limits, and behind a proxy ---------------------------------------------------------


def test_a_normal_flow_is_not_held_back_by_the_default_limits(flow, limits):
    limits.OAUTH_TOKEN_RATE_LIMIT, limits.OAUTH_TOKEN_CLIENT_RATE_LIMIT, limits.OAUTH_REVOKE_RATE_LIMIT = "30/m", "60/m", "30/m"
    started = flow("operator")
    body = tokens_of(started)
    for _ in range(5):  # an agent refreshing often
        refreshed = started.refresh(body["refresh_token"])
        assert refreshed.status_code == 200, refreshed.content
        body = refreshed.json()
    assert started.revoke(body["refresh_token"], token_type_hint="refresh_token").status_code == 200
    assert not limited(ISSUE) and not limited(REVOKE)


def test_behind_a_proxy_each_forwarded_client_counts_apart(flow, limits):
    """With CLIENT_IP_HEADER set, the address counted and audited is the one the proxy appended, not the proxy's,
    and not one the client wrote in front of it (a new forged one per guess gains it nothing); a header that is no
    address counts as the proxy's own, never as a key of its own."""
    limits.OAUTH_TOKEN_RATE_LIMIT, limits.CLIENT_IP_HEADER = "2/m", "HTTP_X_FORWARDED_FOR"
    started = flow("operator")
    proxy, one, two = new_address(), "192.0.2.7", "198.51.100.8"

    def via_proxy(forwarded: str | None):
        # The client's own X-Forwarded-For (a fresh address each time), then what the proxy appended.
        return guess(started, proxy, **({"HTTP_X_FORWARDED_FOR": f"{new_address()}, {forwarded}"} if forwarded else {}))

    assert [via_proxy(one).status_code for _ in range(3)] == [400, 400, 429]
    assert via_proxy(two).status_code == 400  # another client behind the same proxy
    assert [via_proxy(None).status_code for _ in range(2)] == [400, 400]  # the proxy's own address, its 2
    assert_slowed_down(via_proxy("not-an-address"), "from this address")  # counted as the proxy's
    assert [e.client_ip for e in limited(ISSUE)] == [one, proxy]
