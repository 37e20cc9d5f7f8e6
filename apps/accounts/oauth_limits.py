"""Rate limits of the endpoints an OAuth client calls without a session (docs/oauth.md, "Rate limits"): the token
endpoint per client address and per client_id, the revocation and registration endpoints per client address. Without them, client
secrets, codes, PKCE verifiers and refresh tokens could be guessed at full speed, and every guess is an audit event.

django-ratelimit's fixed windows in the console's Redis cache, as the sign-in page's limit: the address is the one
`RATELIMIT_IP_META_KEY` names (`apps.core.middleware.rate_limit_address`: behind a proxy, CLIENT_IP_HEADER's),
masked to its /64 for IPv6 as django-ratelimit does. A refused request runs nothing (no operation, no oauthlib)
and is answered 429 in OAuth's error form with Retry-After; the first refusal of a key in a window is audited
(`denied`, naming the limit, the client_id the request named and the address), the others are not, so that a
flood cannot grow the log. Nothing of the request but its client_id is read: no secret reaches the event."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import caches
from django.http import JsonResponse
from django_ratelimit.core import _get_ip, get_usage

from apps.audit.writer import record
from apps.core.middleware import rate_limit_address

from .actors import Actor

# Each endpoint's limits, checked in this order: what a request is keyed by, and the setting holding the rate.
# A request refused by one is not counted against the next (a flood from one address spends no client's budget).
LIMITS = {
    "token": (("address", "OAUTH_TOKEN_RATE_LIMIT"), ("client_id", "OAUTH_TOKEN_CLIENT_RATE_LIMIT")),
    "revoke": (("address", "OAUTH_REVOKE_RATE_LIMIT"),),
    "register": (("address", "OAUTH_REGISTRATION_RATE_LIMIT"),),
}
OPERATIONS = {"token": "accounts.issue_agent_token", "revoke": "accounts.revoke_agent_token", "register": "accounts.register_agent"}
WHAT = {"token": "token requests", "revoke": "revocation requests", "register": "client registrations"}
WHOSE = {"address": "from this address", "client_id": "for this client"}


def refusal(request, endpoint: str, client_id: str) -> JsonResponse | None:
    """None when the request may go on (it was counted); else the 429 to answer it with (nothing ran)."""
    for kind, setting in LIMITS[endpoint]:
        rate = getattr(settings, setting)
        value = _get_ip(request) if kind == "address" else client_id
        if not rate or not value:  # a limit set empty is off; a request naming no client has the address limit only
            continue
        group = f"oauth.{endpoint}.{kind}"
        usage = get_usage(request, group=group, key=lambda _g, _r, v=value: v, rate=rate, method="POST", increment=True)
        if usage is not None and usage["should_limit"]:
            wait = max(1, usage["time_left"])  # (-1 when the cache could not count: refused all the same)
            _audit_first(request, endpoint, kind, group, value, rate, wait, client_id)
            description = f"Too many {WHAT[endpoint]} {WHOSE[kind]} (at most {rate}); try again in {wait} s."
            headers = {"Retry-After": str(wait), "Cache-Control": "no-store", "Pragma": "no-cache"}
            return JsonResponse({"error": "slow_down", "error_description": description}, status=429, headers=headers)
    return None


def _audit_first(request, endpoint: str, kind: str, group: str, value: str, rate: str, wait: int, client_id: str) -> None:
    """One `denied` event per key per window: the first refusal adds a marker (atomic: Redis SET NX) that lives until
    the window has ended (`wait` seconds, and one more for the second the window's last request may fall in)."""
    marker = "oauth.limited:" + hashlib.sha256(f"{group}|{value}".encode()).hexdigest()
    if not caches[settings.RATELIMIT_USE_CACHE].add(marker, 1, timeout=wait + 1):
        return
    record(
        operation=OPERATIONS[endpoint], outcome="denied", channel="web", actor=Actor.system(), target=client_id[:200],
        params={"limited_by": kind, "rate": rate, "retry_after": wait},
        error=f"rate limited: too many {WHAT[endpoint]} {WHOSE[kind]} (at most {rate}); answered 429 for {wait} s, "
              "later refusals in this window not audited",
        client_ip=rate_limit_address(request), request_id=getattr(request, "request_id", ""),
    )  # fmt: skip
