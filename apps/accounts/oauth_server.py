"""The console as an OAuth 2.1 authorization server for MCP clients (django-oauth-toolkit), and what an
OAuth access token is to the rest of the console: an `AgentGrant`, which the Actor treats like an API
token (its scopes narrow its user's roles). docs/oauth.md.

Only the authorization code grant with PKCE S256 for public clients; access tokens are bound to
the /mcp resource (RFC 8707) and stored as their SHA-256 only (COMPLIANT_BCP_RFC9700_TOKEN_STORAGE).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from oauth2_provider.models import AbstractApplication, get_access_token_model, get_application_model, refresh_token_expire_timedelta
from oauth2_provider.oauth2_validators import OAuth2Validator

from .roles import ROLES

ACCESS_PREFIX = "opa_"  # an OAuth access token; API tokens start with opc_
REFRESH_PREFIX = "opr_"


def new_access_token(_request=None, *_args) -> str:
    return ACCESS_PREFIX + secrets.token_urlsafe(32)


def new_refresh_token(_request=None, *_args) -> str:
    return REFRESH_PREFIX + secrets.token_urlsafe(32)


class ConsoleOAuth2Validator(OAuth2Validator):
    """DOT's validator, narrowed: the authorization code grant (and its refresh) only, for active users."""

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs):
        if grant_type not in ("authorization_code", "refresh_token"):
            return False
        return super().validate_grant_type(client_id, grant_type, client, request, *args, **kwargs)

    def validate_response_type(self, client_id, response_type, client, request, *args, **kwargs):
        return response_type == "code" and super().validate_response_type(client_id, response_type, client, request, *args, **kwargs)

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        return super().validate_code(client_id, code, client, request, *args, **kwargs) and request.user.is_active


@dataclass(frozen=True)
class AgentGrant:
    """An OAuth agent as the Actor sees a token: whose, which scopes, until when. From an access token
    (`authenticate`), or — for work it started, run later — from the reference jobs and approval requests
    keep of it (`Actor.credential`, "oauth:<application id>:<token family>"; `stored_grant`).

    `family` is the authorization the token belongs to: one person's consent to the client, the
    `token_family` DOT gives the refresh token a code exchange issues and every rotation of it inherits.
    Work names it, so that a later consent to the same client (a new family) does not make it live again."""

    access_token_id: int | None  # None: rebuilt from a stored reference, not from a presented token
    application_id: int
    client_name: str
    user: object = field(repr=False)
    scopes: tuple[str, ...]
    expires_at: datetime | None
    revoked: bool = False  # the user's authorization of the agent is gone (stored_grant)
    family: str | None = None  # None: a token DOT issued no family (a refresh token older than families), or an old reference
    kind = "oauth"
    pk = None  # no ApiToken row: audit events name an agent by its text (str), not token_id

    @property
    def user_id(self) -> int:
        return self.user.pk

    @property
    def lookup(self) -> str:
        """Rate limits count per token (Actor.rate_key): per agent and user, however often its tokens rotate."""
        return f"oauth{self.application_id}.{self.user_id}"

    @property
    def credential(self) -> str:
        return agent_credential(self.application_id, self.family)

    @property
    def public_id(self) -> str:
        return f"oauth:{self.application_id}/{self.access_token_id}" if self.access_token_id else self.credential

    def refusal(self) -> str:
        """Why the agent may no longer act for its user ("" when it may)."""
        if not self.revoked:
            return ""
        return (
            f"The OAuth agent {self.client_name} (#{self.application_id}) that requested this job was revoked: "
            f"{self.user} no longer authorizes it "
            "(the authorization it asked under was revoked or expired, or the client was deleted; "
            "a later authorization of the same client does not carry it). Nothing ran."
        )

    def __str__(self) -> str:
        return f"{self.client_name} (OAuth agent #{self.application_id})"


def agent_credential(application_id: int, family: uuid.UUID | str | None = None) -> str:
    """How jobs and approval requests name an OAuth agent, to act through it later (accounts.credentials):
    "oauth:<application id>:<token family>", the one authorization the call came through. Without a family,
    "oauth:<application id>": the client as a whole (`accounts.revoke_agent` ends the work of all its
    authorizations; work queued before families were named; a token without one)."""
    return f"oauth:{application_id}:{family}" if family else f"oauth:{application_id}"


def family_of(access_token) -> uuid.UUID | None:
    """The token family of an access token: its refresh token's (rotation keeps it), or — its refresh token
    deleted out of band — that of the refresh token it was minted from."""
    for refresh in (getattr(access_token, "refresh_token", None), access_token.source_refresh_token):
        if refresh is not None and refresh.token_family:
            return refresh.token_family
    return None


def authenticate(raw: str) -> AgentGrant | None:
    """The usable grant of a raw OAuth access token, or None: unknown, expired, another resource's,
    its client gone, or its user inactive."""
    if not raw.startswith(ACCESS_PREFIX):
        return None
    checksum = hashlib.sha256(raw.encode()).hexdigest()
    token = (
        get_access_token_model()
        .objects.select_related("user", "application", "refresh_token", "source_refresh_token")
        .filter(token_checksum=checksum)
        .first()
    )
    if token is None or token.user is None or token.application is None or not token.user.is_active:
        return None
    if token.expires <= timezone.now() or settings.MCP_RESOURCE_URL not in (token.resource or []):
        return None  # an unrestricted token (no resource) is not for /mcp either
    return AgentGrant(
        access_token_id=token.pk,
        application_id=token.application_id,
        client_name=token.application.name or token.application.client_id,
        user=token.user,
        scopes=tuple(s for s in token.scope.split() if s in ROLES),
        expires_at=token.expires,
        family=str(family) if (family := family_of(token)) else None,
    )


def is_public_code_client(application) -> bool:
    return (
        application.client_type == AbstractApplication.CLIENT_PUBLIC
        and application.authorization_grant_type == AbstractApplication.GRANT_AUTHORIZATION_CODE
    )


def stored_grant(user, application_id: int, family: uuid.UUID | None = None) -> AgentGrant:
    """The agent a job or an approval request was asked by, as it stands now: revoked unless the client
    still exists and the user's authorization of it is still live — an unexpired access token, or a refresh
    token that can still mint one (not revoked, within REFRESH_TOKEN_EXPIRE_SECONDS of its access token's
    expiry, as DOT checks a refresh). With a `family`, only that authorization's tokens count (those of the
    token family): a later consent to the same client is another family. Without one (an old reference),
    any of the user's tokens of the client. Its scopes are those the live tokens grant.
    `accounts.revoke_agent` deletes them all.
    (The resource a token is bound to is not checked again: only /mcp tokens are issued, and the worker
    that asks need not know the address the web process serves.)"""
    application = get_application_model().objects.filter(pk=application_id).first()
    now = timezone.now()
    refreshable = Q(refresh_token__isnull=False, refresh_token__revoked__isnull=True)
    if expiry := refresh_token_expire_timedelta():
        refreshable &= Q(expires__gt=now - expiry)
    tokens = get_access_token_model().objects.filter(user=user, application=application).filter(Q(expires__gt=now) | refreshable)
    if family is not None:
        tokens = tokens.filter(Q(refresh_token__token_family=family) | Q(source_refresh_token__token_family=family))
    live = list(tokens) if application is not None else []
    return AgentGrant(
        access_token_id=None,
        application_id=application_id,
        client_name=(application.name or application.client_id) if application is not None else "a deleted client",
        user=user,
        scopes=tuple(sorted({s for t in live for s in t.scope.split() if s in ROLES})),
        expires_at=None,
        revoked=not live,
        family=str(family) if family is not None else None,
    )
