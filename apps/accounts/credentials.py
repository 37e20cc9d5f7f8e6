"""The credential a call came through, as work it starts keeps it to act for it later.

A job (core.Job) or an approval request stores who asked (`requested_by`), a reference to the credential
(`Actor.credential`: "api:<ApiToken pk>", "oauth:<OAuth application id>:<token family>" — one authorization of
an agent; "oauth:<OAuth application id>" in work queued before that —, "" for a person's session)
and the scopes it had (`Actor.scopes`). Core keeps the reference opaque; `Actor.for_credential` turns
it back into an actor through `resolve`, and `Actor.refusal()` says when the credential may no longer act.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from . import oauth_server
from .models import ApiToken


@dataclass(frozen=True)
class GoneCredential:
    """A stored reference to a credential that no longer exists (or that this console never issued)."""

    credential: str
    scopes: tuple[str, ...] = ()
    expires_at = None
    pk = None

    @property
    def lookup(self) -> str:
        return self.credential

    def refusal(self) -> str:
        return f"The credential {self.credential} that requested this job no longer exists. Nothing ran."

    def __str__(self) -> str:
        return f"{self.credential} (deleted)"


def resolve(user, credential: str):
    """The credential a stored reference names, as it stands now: the ApiToken row, the OAuth agent's
    grant (oauth_server.stored_grant), or a GoneCredential. Never None: a revoked one still names itself."""
    kind, _, ident = credential.partition(":")
    if kind == "oauth":
        application, has_family, family = ident.partition(":")
        if not application.isdigit():
            return GoneCredential(credential)
        if not has_family:  # an old reference: the client, whichever of the user's authorizations of it is live
            return oauth_server.stored_grant(user, int(application))
        try:
            return oauth_server.stored_grant(user, int(application), uuid.UUID(family))
        except ValueError:
            return GoneCredential(credential)
    if kind == "api" and ident.isdigit():
        return ApiToken.objects.filter(pk=int(ident), user=user).first() or GoneCredential(credential)
    return GoneCredential(credential)
