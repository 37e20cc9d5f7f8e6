"""Bearer authentication of MCP requests with the console's own API tokens.

The SDK's `BearerAuthBackend` calls `verify_token`; a request without a usable
token never reaches the MCP server: `RequireAuthMiddleware` answers 401 with
`WWW-Authenticate: Bearer ...`.
"""

from __future__ import annotations

from typing import Any

from mcp.server.auth.provider import AccessToken
from pydantic import Field

from apps.accounts.actors import Actor
from apps.accounts.models import TOKEN_PREFIX, ApiToken

from .context import in_thread


class ConsoleAccessToken(AccessToken):
    """A verified API token, carrying the actor the gateway will see."""

    actor: Any = Field(default=None, exclude=True, repr=False)


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
