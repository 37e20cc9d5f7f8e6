"""Bearer authentication of MCP requests with the console's own API tokens or OAuth access tokens (docs/oauth.md).

The SDK's `BearerAuthBackend` calls `verify_token`; a request without a usable
token never reaches the MCP server: `RequireAuthMiddleware` answers 401 with
`WWW-Authenticate: Bearer ...`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings
from django_ratelimit.core import get_usage
from mcp.server.auth.provider import AccessToken
from pydantic import Field

from apps.accounts.actors import Actor, actor_for_token
from apps.accounts.models import ApiToken, hash_token
from apps.audit.writer import record

from .context import in_thread

REFUSED_AUDIT_RATE = "10/m"


class ConsoleAccessToken(AccessToken):
    """A verified API token, carrying the actor the gateway will see."""

    actor: Any = Field(default=None, exclude=True, repr=False)


def _verify(raw: str) -> ConsoleAccessToken | None:
    actor = actor_for_token(raw)
    if actor is None:
        _audit_refused(raw)
        return None
    return _access_token(actor)


# The access token of each cached actor, built once per actor (a pydantic model per request otherwise):
# keyed by the actor object itself, which actor_for_token replaces whenever it reads the token again.
_access: dict[int, tuple[Actor, ConsoleAccessToken]] = {}
_ACCESS_MAX = 10_000


def _access_token(actor: Actor) -> ConsoleAccessToken:
    held = _access.get(id(actor))
    if held is not None and held[0] is actor:
        return held[1]
    if len(_access) >= _ACCESS_MAX:
        _access.clear()
    access = _new_access_token(actor)
    _access[id(actor)] = (actor, access)
    return access


def _new_access_token(actor: Actor) -> ConsoleAccessToken:
    token = actor.token
    return ConsoleAccessToken(
        token=token.public_id,  # never the secret part
        client_id=token.public_id,
        subject=str(token.user_id),
        scopes=sorted(actor.roles),
        expires_at=int(token.expires_at.timestamp()) if token.expires_at else None,
        resource=settings.MCP_RESOURCE_URL,  # both kinds of token are for /mcp (an OAuth one checked in accounts.oauth_server)
        actor=actor,
    )


def _audit_refused(raw: str) -> None:
    """A refused token that names a real one (revoked, expired, wrong secret, inactive owner) is audited,
    at most REFUSED_AUDIT_RATE per token so that a flood cannot grow the log.
    Strings that name no token are not attributable to anyone and are only answered 401."""
    lookup = ApiToken.lookup_of(raw)
    token = ApiToken.objects.select_related("user").filter(lookup=lookup).first() if lookup else None
    if token is None:
        return
    usage = get_usage(None, group="mcp.token_refused", key=lambda _g, _r: lookup, rate=REFUSED_AUDIT_RATE, increment=True)
    if usage is not None and usage["should_limit"]:
        return
    why = {"revoked": "token revoked", "expired": "token expired"}.get(token.state, "wrong secret or inactive user")
    record(operation="accounts.token_refused", outcome="denied", channel="mcp", actor_name=token.user.username,
           target=str(token), error=why)  # fmt: skip


class ApiTokenVerifier:
    """The SDK's `TokenVerifier` protocol over `ApiToken`."""

    def __init__(self):
        self._reads: dict[str, asyncio.Future] = {}  # token digest -> its read in flight (on the event loop)

    async def verify_token(self, token: str) -> ConsoleAccessToken | None:
        # A token this process verified within ACTOR_CACHE_SECONDS needs no thread hop and no
        # database: the call's one hop is the gateway's.
        actor = actor_for_token(token, cached_only=True)
        if actor is not None:
            return _access_token(actor)
        # Requests of one token that find its cached actor gone share one read: each second, every request
        # arriving while the read waits for a pool thread made its own (several a second at 16 clients).
        # The read starts after the cached actor ran out, so what it answers is no older than the 1-s rule allows.
        key = hash_token(token)
        read = self._reads.get(key)
        if read is None or read.get_loop() is not asyncio.get_running_loop():  # (a loop that ended mid-read: tests)
            read = self._reads[key] = asyncio.ensure_future(in_thread(_verify)(token))
            read.add_done_callback(lambda _: self._reads.pop(key, None))
        return await asyncio.shield(read)  # a request that goes away does not cancel the others' read
