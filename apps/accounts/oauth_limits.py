"""Rate limits of the endpoints an OAuth client calls without a session (docs/oauth.md, "Rate limits"): the token,
revocation and registration endpoints per client address, and the token endpoint's failures per client_id. Without
them, client secrets, codes, PKCE verifiers and refresh tokens could be guessed at full speed, and every guess is an
audit event.

django-ratelimit's fixed windows in the console's Redis cache, as the sign-in page's limit: the address is the one
`RATELIMIT_IP_META_KEY` names (`apps.core.middleware.rate_limit_address`: behind proxies, the one they appended to
CLIENT_IP_HEADER), masked to its /64 for IPv6 as django-ratelimit does. A refused request runs nothing (no operation,
no oauthlib) and is answered 429 in OAuth's error form with Retry-After; the first refusal of a key in a window is
audited (`denied`, naming the limit, the client_id the request named and the address), the others are not, so that a
flood cannot grow the log. Nothing of the request but its client_id is read: no secret reaches the event.

The per-client limit counts only the client's failed token requests (oauthlib refused them), and once they are spent
it refuses only addresses that failed for that client in the window: each address then gets one wrong guess per
window, while the client's own agents, which did not fail, go on. Counting every request, as it first did, let anyone
who knows a client_id (it is not secret) lock that client's agents out of their tokens with a few dozen requests."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import caches
from django.http import JsonResponse
from django_ratelimit.core import _get_ip, get_usage

from apps.audit.writer import record
from apps.core.middleware import rate_limit_address

from .actors import Actor

# Each endpoint's limits per address: the setting holding the rate. The token endpoint's failures per client are
# counted apart (count_failure) and checked after its address limit: a request that limit refused spends nothing.
LIMITS = {"token": "OAUTH_TOKEN_RATE_LIMIT", "revoke": "OAUTH_REVOKE_RATE_LIMIT", "register": "OAUTH_REGISTRATION_RATE_LIMIT"}
CLIENT_FAILURES = "OAUTH_TOKEN_CLIENT_RATE_LIMIT"
OPERATIONS = {"token": "accounts.issue_agent_token", "revoke": "accounts.revoke_agent_token", "register": "accounts.register_agent"}
WHAT = {"token": "token requests", "revoke": "revocation requests", "register": "client registrations"}


def refusal(request, endpoint: str, client_id: str) -> JsonResponse | None:
    """None when the request may go on (it was counted); else the 429 to answer it with (nothing ran)."""
    rate, address = getattr(settings, LIMITS[endpoint]), _get_ip(request)
    if rate:  # a limit set empty is off
        group = f"oauth.{endpoint}.address"
        usage = get_usage(request, group=group, key=lambda _g, _r: address, rate=rate, method="POST", increment=True)
        if usage is not None and usage["should_limit"]:
            return _refused(request, endpoint, "address", group, address, rate, usage["time_left"], client_id)
    rate = getattr(settings, CLIENT_FAILURES)
    if endpoint != "token" or not rate or not client_id:  # a request naming no client has the address limit only
        return None
    usage = _client_failures(request, client_id, rate, increment=False)
    spent = usage is not None and usage["count"] >= usage["limit"]
    if spent and caches[settings.RATELIMIT_USE_CACHE].get(_failed_here(client_id, address)):
        return _refused(request, endpoint, "client_id", "oauth.token.client_id", client_id, rate, usage["time_left"], client_id)
    return None


def count_failure(request, client_id: str) -> None:
    """oauthlib refused a token request naming `client_id` (a wrong code, secret, verifier or refresh token): spend
    one of the client's failures, and mark the address as one that failed for it until its window ends."""
    rate = getattr(settings, CLIENT_FAILURES)
    if not rate or not client_id:
        return
    usage = _client_failures(request, client_id, rate, increment=True)
    wait = usage["time_left"] if usage is not None and usage["time_left"] > 0 else 60
    caches[settings.RATELIMIT_USE_CACHE].set(_failed_here(client_id, _get_ip(request)), 1, timeout=wait + 1)


def _client_failures(request, client_id: str, rate: str, *, increment: bool) -> dict | None:
    group = "oauth.token.client_id"
    return get_usage(request, group=group, key=lambda _g, _r: client_id, rate=rate, method="POST", increment=increment)


def _failed_here(client_id: str, address: str) -> str:
    return "oauth.failed:" + hashlib.sha256(f"{client_id}|{address}".encode()).hexdigest()


def _refused(request, endpoint: str, kind: str, group: str, value: str, rate: str, time_left: int, client_id: str) -> JsonResponse:
    wait = max(1, time_left)  # (-1 when the cache could not count: refused all the same)
    _audit_first(request, endpoint, kind, group, value, rate, wait, client_id)
    too_many = _too_many(endpoint, kind, rate)
    description = f"{too_many[:1].upper()}{too_many[1:]}; try again in {wait} s."
    headers = {"Retry-After": str(wait), "Cache-Control": "no-store", "Pragma": "no-cache"}
    return JsonResponse({"error": "slow_down", "error_description": description}, status=429, headers=headers)


def _audit_first(request, endpoint: str, kind: str, group: str, value: str, rate: str, wait: int, client_id: str) -> None:
    """One `denied` event per key per window: the first refusal adds a marker (atomic: Redis SET NX) that lives until
    the window has ended (`wait` seconds, and one more for the second the window's last request may fall in)."""
    marker = "oauth.limited:" + hashlib.sha256(f"{group}|{value}".encode()).hexdigest()
    if not caches[settings.RATELIMIT_USE_CACHE].add(marker, 1, timeout=wait + 1):
        return
    record(
        operation=OPERATIONS[endpoint], outcome="denied", channel="web", actor=Actor.system(), target=client_id[:200],
        params={"limited_by": kind, "rate": rate, "retry_after": wait},
        error=f"rate limited: {_too_many(endpoint, kind, rate)}; answered 429 for {wait} s, later refusals in this window not audited",
        client_ip=rate_limit_address(request), request_id=getattr(request, "request_id", ""),
    )  # fmt: skip


def _too_many(endpoint: str, kind: str, rate: str) -> str:
    if kind == "address":
        return f"too many {WHAT[endpoint]} from this address (at most {rate})"
    return f"too many failed token requests for this client, this address's among them (at most {rate})"
