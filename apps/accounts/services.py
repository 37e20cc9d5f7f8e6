"""Operations about the caller's own identity."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from apps.core.jobs import Context
from apps.core.operations import Risk, operation


class WhoAmIInput(BaseModel):
    pass


class WhoAmI(BaseModel):
    user: str
    roles: list[str] = Field(description="The roles this call has: the user's, narrowed by the token's scopes.")
    token: str | None = Field(None, description="The public part of the API token the call came through.")
    token_expires_at: datetime | None = None


@operation("accounts.whoami", risk=Risk.READ)
def whoami(ctx: Context, params: WhoAmIInput) -> WhoAmI:
    """Who the caller is: user name, effective roles and — for an agent — the token's id and expiry.
    Call it first to learn which operations are open to you (risky ones need a human approver)."""
    token = ctx.actor.token
    return WhoAmI(
        user=ctx.actor.name,
        roles=sorted(ctx.actor.roles),
        token=f"opc_{token.lookup}" if token is not None else None,
        token_expires_at=token.expires_at if token is not None else None,
    )
