"""Bearer authentication of MCP requests with the console's own API tokens.

The SDK's `BearerAuthBackend` calls `verify_token`; a request without a usable
token never reaches the MCP server: `RequireAuthMiddleware` answers 401 with
`WWW-Authenticate: Bearer ...`.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.db import connection
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from pydantic import Field

from apps.accounts.actors import Actor
from apps.accounts.models import TOKEN_PREFIX, ApiToken


class ConsoleAccessToken(AccessToken):
    """A verified API token, carrying the actor the gateway will see."""

    actor: Any = Field(default=None, exclude=True, repr=False)


def in_thread(func):
    """Run sync ORM code off the event loop, on a pooled thread.

    A pool thread keeps its database connection from call to call, as a Celery
    worker does (reconnecting on every tools/call would double its cost); a
    connection that failed is dropped, and the next call opens a fresh one."""

    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        finally:
            if connection.errors_occurred:
                connection.close_if_unusable_or_obsolete()

    return sync_to_async(run, thread_sensitive=False)


def _verify(raw: str) -> ConsoleAccessToken | None:
    token = ApiToken.authenticate(raw)
    if token is None:
        return None
    actor = Actor.for_user(token.user, token)
    if not actor.is_authenticated:
        return None
    return ConsoleAccessToken(
        token=f"{TOKEN_PREFIX}{token.lookup}",  # never the secret part
        client_id=f"{TOKEN_PREFIX}{token.lookup}",
        subject=str(token.user_id),
        scopes=sorted(actor.roles),
        expires_at=int(token.expires_at.timestamp()) if token.expires_at else None,
        actor=actor,
    )


class ApiTokenVerifier:
    """The SDK's `TokenVerifier` protocol over `ApiToken`."""

    async def verify_token(self, token: str) -> ConsoleAccessToken | None:
        return await in_thread(_verify)(token)


def actor_of(ctx) -> Actor:
    """The actor of an MCP request (its token was verified before the request got here)."""
    user = ctx.request.scope.get("user") if ctx.request is not None else None
    if not isinstance(user, AuthenticatedUser) or not isinstance(user.access_token, ConsoleAccessToken):
        return Actor.for_user(None)
    return user.access_token.actor
