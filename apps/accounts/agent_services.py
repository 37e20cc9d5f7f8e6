"""Operations about OAuth agents (docs/oauth.md): a client registering itself, a person consenting to one
(which issues the one-time authorization code) and revoking one. The registration endpoint, the consent
page and the authorized-agents page write through them."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from oauth2_provider.models import get_access_token_model, get_application_model, get_grant_model, get_refresh_token_model
from oauth2_provider.oauth2_backends import get_oauthlib_core
from oauthlib.oauth2 import FatalClientError, OAuth2Error
from pydantic import BaseModel, Field

from apps.core import hooks
from apps.core.errors import InvalidInput, PermissionDenied
from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from .oauth_server import agent_credential, is_public_code_client

OAUTH_SCOPES = tuple(settings.OAUTH2_PROVIDER["SCOPES"])


class RegisterAgentInput(BaseModel):
    client_name: str = Field("", max_length=100)
    redirect_uris: list[str] = Field(min_length=1, max_length=5)
    grant_types: list[str] = Field(["authorization_code"], description="Only authorization_code (and refresh_token).")
    response_types: list[str] = Field(["code"], description="Only code.")


class RegisteredAgent(BaseModel):
    client_id: str
    client_name: str
    redirect_uris: list[str]
    grant_types: list[str] = ["authorization_code", "refresh_token"]
    response_types: list[str] = ["code"]
    token_endpoint_auth_method: str = "none"
    client_id_issued_at: int


# A native client's redirect may be plain http only to its own machine (RFC 8252 §7.3; MCP clients listen there).
LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")


@operation("accounts.register_agent", risk=Risk.WRITE, permission="accounts.manage_users", target=lambda p: p.client_name, exposed=False)
def register_agent(ctx: Context, params: RegisterAgentInput) -> RegisteredAgent:
    """Register an OAuth client (RFC 7591) for the console's own registration endpoint, which runs it as the
    system: a public client of the authorization code grant, no user, no secret — it can do nothing until
    a person consents."""
    if not ctx.actor.is_system:
        raise PermissionDenied("Clients register themselves at the registration endpoint.")
    if set(params.grant_types or ["authorization_code"]) - {"authorization_code", "refresh_token"}:
        raise InvalidInput({"grant_types": "Only the authorization_code grant (and refresh_token)."})
    if set(params.response_types or ["code"]) != {"code"}:
        raise InvalidInput({"response_types": "Only the code response type."})
    for uri in params.redirect_uris:
        parts = urlsplit(uri)
        if not (parts.scheme == "https" and parts.hostname) and not (parts.scheme == "http" and parts.hostname in LOOPBACK_NAMES):
            raise InvalidInput({"redirect_uris": f"{uri[:100]!r} is neither https nor http on the client's own loopback (RFC 8252)."})
    Application = get_application_model()
    application = Application(
        name=params.client_name, redirect_uris=" ".join(params.redirect_uris), client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE, registration_source=Application.RegistrationSource.DCR,
        client_secret="", hash_client_secret=False,
    )  # fmt: skip
    try:
        application.full_clean()
    except ValidationError as exc:
        raise InvalidInput({"redirect_uris": "; ".join(exc.messages)}) from None
    application.save()
    return RegisteredAgent(
        client_id=application.client_id, client_name=application.name, redirect_uris=params.redirect_uris,
        client_id_issued_at=int(application.created.timestamp()),
    )  # fmt: skip


def consentable(scopes, roles) -> list[str]:
    """The scopes a consent grants: those asked that are roles of the user (and OAuth scopes at all)."""
    return sorted(set(scopes) & set(roles) & set(OAUTH_SCOPES))


class AuthorizeAgentInput(BaseModel):
    client_id: str = Field(min_length=1, max_length=100)
    redirect_uri: str = Field(min_length=1, max_length=2000)
    scopes: list[str] = Field(min_length=1, description=f"OAuth scopes asked: any of {', '.join(OAUTH_SCOPES)}.")
    resource: str = Field(description="RFC 8707 resource indicator: must be the console's /mcp.")
    state: str = Field("", max_length=500)
    code_challenge: str = Field(min_length=43, max_length=128)
    code_challenge_method: Literal["S256"] = Field(description="PKCE: S256 only.")


class AuthorizedAgent(BaseModel):
    client: str
    scopes: list[str] = Field(description="What the agent may do: the scopes asked that are roles of yours.")
    redirect_to: str = Field(json_schema_extra={"secret": True}, description="The client's redirect URI with the one-time code.")


def _application(client_id: str):
    application = get_application_model().objects.filter(client_id=client_id).first()
    if application is None or not is_public_code_client(application):
        raise InvalidInput({"client_id": "No such client (public, authorization code) is registered."})
    return application


@operation("accounts.authorize_agent", risk=Risk.WRITE, permission="accounts.use_api_tokens", target=lambda p: p.client_id, exposed=False)
def authorize_agent(ctx: Context, params: AuthorizeAgentInput) -> AuthorizedAgent:
    """Let an OAuth client (an MCP agent) act as you at /mcp, with the scopes it asked that are roles of
    yours: issues the one-time authorization code its redirect receives."""
    if ctx.actor.token is not None or ctx.user is None:
        raise PermissionDenied("Only a signed-in person can authorize an agent.")
    application = _application(params.client_id)
    if params.resource != settings.MCP_RESOURCE_URL:
        raise InvalidInput({"resource": f"invalid_target: this console issues tokens for {settings.MCP_RESOURCE_URL} only."})
    granted = consentable(params.scopes, ctx.actor.roles)
    if not granted:
        raise InvalidInput({"scopes": "None of the scopes asked is a role of yours."})
    query = {
        "client_id": params.client_id,
        "redirect_uri": params.redirect_uri,
        "response_type": "code",
        "state": params.state,
        "code_challenge": params.code_challenge,
        "code_challenge_method": params.code_challenge_method,
    }
    credentials = {**query, "user": ctx.user, "resource": [params.resource]}
    try:
        headers, _body, _status = get_oauthlib_core().server.create_authorization_response(
            uri=f"{settings.CONSOLE_BASE_URL.rstrip('/')}/oauth/authorize/?{urlencode(query)}",
            http_method="GET",
            scopes=granted,
            credentials=credentials,
        )
    except FatalClientError as exc:  # a redirect URI not registered: never redirect there
        raise InvalidInput({"redirect_uri": exc.description or exc.error}) from None
    except OAuth2Error as exc:
        raise InvalidInput({"request": exc.description or exc.error}) from None
    location = headers.get("Location", "")
    if "code=" not in location:
        raise InvalidInput({"request": "The authorization server refused the request."})
    return AuthorizedAgent(client=application.name or application.client_id, scopes=granted, redirect_to=location)


class RevokeAgentInput(BaseModel):
    application_id: int
    user_id: int | None = Field(None, description="Whose authorization; none is yours. Another's needs a user manager.")


class RevokedAgent(BaseModel):
    client: str
    user_id: int
    tokens: int = Field(description="Access tokens deleted.")
    jobs_cancelled: int = Field(0, description="Jobs the agent queued for the user that had not started: cancelled.")
    requests_withdrawn: int = Field(0, description="The agent's approval requests for the user still pending: withdrawn.")


@operation(
    "accounts.revoke_agent",
    risk=Risk.WRITE,
    permission="accounts.use_api_tokens",
    target=lambda p: f"agent {p.application_id}",
    exposed=False,
)
def revoke_agent(ctx: Context, params: RevokeAgentInput) -> RevokedAgent:
    """Revoke what you authorized an OAuth agent to do: its access and refresh tokens and pending codes
    stop counting at once (other web processes within ACTOR_CACHE_SECONDS), and the work it left waiting
    for you ends — its queued jobs are cancelled, its pending approval requests withdrawn — so that
    authorizing the same client again does not revive them."""
    user_id = params.user_id or ctx.actor.user_id
    if user_id != ctx.actor.user_id and not ctx.actor.has_perm("accounts.manage_users"):
        raise PermissionDenied("You may revoke your own agents only.")
    application = get_application_model().objects.filter(pk=params.application_id).first()
    if application is None:
        raise InvalidInput({"application_id": f"There is no agent #{params.application_id}."})
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        raise InvalidInput({"user_id": f"There is no user #{user_id}."})
    client = application.name or application.client_id
    mine = {"user": user, "application": application}
    with transaction.atomic():
        get_refresh_token_model().objects.filter(**mine).delete()
        get_grant_model().objects.filter(**mine).delete()
        # delete() one by one: post_delete drops this process's cached actor of each token
        tokens = list(get_access_token_model().objects.filter(**mine))
        for token in tokens:
            token.delete()
        ctx.note_in_audit(tokens=len(tokens))
        why = f"The OAuth agent {client} (#{application.pk}) that requested it was revoked by {ctx.actor.name}."
        ended = end_waiting_work(ctx, user, agent_credential(application.pk), why)  # every authorization of the client
    return RevokedAgent(client=client, user_id=user_id, tokens=len(tokens), **ended)


def end_waiting_work(ctx: Context, user, credential: str, why: str) -> dict[str, int]:
    """End the work an agent left waiting for `user` under a revoked `credential` (the client, or one authorization
    of it), in the revoking operation's transaction: its jobs not started are cancelled, its pending approval
    requests withdrawn (core and approvals, through hooks.credential_revoked). How many, also in the audit event."""
    ended = hooks.credential_revoked(user, credential, why)
    counts = {"jobs_cancelled": ended.get("jobs", 0), "requests_withdrawn": ended.get("approval_requests", 0)}
    ctx.note_in_audit(**counts)
    return counts
