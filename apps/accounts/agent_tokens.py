"""Operations of the token endpoints an OAuth agent calls itself (docs/oauth.md): exchanging its one-time code
or its refresh token for tokens, and giving a token back (RFC 7009). DOT's oauthlib server does the OAuth
work and answers the client as DOT's own views would; these put each call through the gateway, so that it
is audited — the agent and the user named, the outcome with the OAuth error code — without the code, the
tokens, the PKCE verifier or a client secret ever in the event. The endpoints run them as the system for
the calling client, as they do the client's registration."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from urllib.parse import parse_qsl

from django.db import transaction
from django.db.models import F
from oauth2_provider.models import get_access_token_model, get_application_model, get_grant_model, get_refresh_token_model
from oauth2_provider.oauth2_backends import get_oauthlib_core
from oauthlib.oauth2 import OAuth2Error
from pydantic import BaseModel, Field

from apps.core.errors import OpsError, PermissionDenied
from apps.core.jobs import Context
from apps.core.operations import Risk, operation
from apps.core.redact import redact_text

from .agent_services import end_waiting_work
from .oauth_server import agent_credential, family_of, stored_grant

# The raw request is handed to oauthlib but never dumped: not into the audit event, not anywhere.
RAW = {"exclude": True, "repr": False, "json_schema_extra": {"secret": True}}


class OAuthEndpointRequest(BaseModel):
    """An OAuth client's POST to a token endpoint, as DOT's OAuthLibCore extracts it for oauthlib."""

    client_id: str = Field("", max_length=200, description="The client the request names (body, or HTTP Basic user).")
    uri: str = Field(max_length=2000, description="The path posted to, with any query (where a careless client may put a code).", **RAW)
    body: str = Field(max_length=20_000, description="The form posted: codes, tokens, verifiers, secrets.", **RAW)
    headers: dict[str, str] = Field(default_factory=dict, description="The request's headers (DOT's META form).", **RAW)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body, keep_blank_values=True))


class TokenRequest(OAuthEndpointRequest):
    grant_type: str = Field("", max_length=100, description="authorization_code or refresh_token.")


class RevocationRequest(OAuthEndpointRequest):
    token_type_hint: str = Field(
        "", max_length=100, description="access_token or refresh_token (RFC 7009 §2.1).", json_schema_extra={"audit": "show"}
    )


class OAuthAnswer(BaseModel):
    """DOT's answer to the client, sent as it is: status, headers (Cache-Control: no-store), JSON body."""

    status: int
    headers: dict[str, str]
    body: str = Field(json_schema_extra={"secret": True}, description="The tokens issued, or the OAuth error.")


class OAuthRefused(OpsError):
    """The authorization server refused the request: the gateway audits it, the endpoint sends `answer`."""

    def __init__(self, answer: OAuthAnswer, message: str, outcome: str = "failed"):
        super().__init__(message)
        self.answer, self.outcome = answer, outcome


def client_id_of(form, authorization: str) -> str:
    """The client a token request names: its client_id, or the user part of HTTP Basic (never the secret)."""
    if form.get("client_id"):
        return str(form["client_id"])
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        return base64.b64decode(encoded).decode().partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return ""


def _refused(answer: OAuthAnswer) -> OAuthRefused:
    """DOT's error answer as an audited refusal: its OAuth error code (and oauthlib's description)."""
    try:
        body = json.loads(answer.body)
    except ValueError:
        body = {}
    error = str(body.get("error") or f"HTTP {answer.status}")
    description = str(body.get("error_description") or "")
    message = redact_text(f"{error}: {description}" if description else error)
    return OAuthRefused(answer, message, outcome="denied" if answer.status in (401, 403) else "failed")


def _checksum(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _note_who(ctx: Context, application, user) -> None:
    """The agent and the user a call was about, in its audit event (also when it is refused)."""
    if application is not None:
        ctx.note_in_audit(client=application.name or application.client_id, application_id=application.pk)
    if user is not None:
        ctx.note_in_audit(user=user.get_username(), user_id=user.pk)


def _system_only(ctx: Context) -> None:
    if not ctx.actor.is_system:
        raise PermissionDenied("OAuth clients call the token endpoints; nobody calls these operations directly.")


@operation("accounts.issue_agent_token", risk=Risk.WRITE, permission="accounts.manage_users", target=lambda p: p.client_id, exposed=False)
def issue_agent_token(ctx: Context, params: TokenRequest) -> OAuthAnswer:
    """The token endpoint (/oauth/token/): an OAuth client exchanges the one-time code a person's consent gave
    it (with its PKCE verifier), or its refresh token, for an access token and a new refresh token.
    A refused exchange issues nothing and is audited with its OAuth error code (invalid_grant, ...). A refresh
    token already rotated, presented again, makes DOT revoke its whole family (reuse protection): the work the
    agent left waiting under that authorization then ends, as when it gives a token back."""
    _system_only(ctx)
    form = params.form()
    application = get_application_model().objects.filter(client_id=params.client_id).first() if params.client_id else None
    user = found = None
    if params.grant_type == "authorization_code" and form.get("code") and application is not None:
        grant = get_grant_model().objects.select_related("user").filter(code=form["code"], application=application).first()
        user = grant.user if grant is not None else None
    elif params.grant_type == "refresh_token" and form.get("refresh_token"):
        refresh = get_refresh_token_model().objects.select_related("user").filter(token_checksum=_checksum(form["refresh_token"]))
        found = refresh.order_by(F("revoked").desc(nulls_first=True)).first()
        user = found.user if found is not None else None
    _note_who(ctx, application, user)
    ctx.note_in_audit(grant_type=params.grant_type)
    presented = found if found is not None and found.token_family else None  # a refresh token of one authorization
    family_was_live = presented is not None and not stored_grant(found.user, found.application_id, found.token_family).revoked
    try:  # as OAuthLibCore.create_token_response
        headers, body, status = get_oauthlib_core().server.create_token_response(params.uri, "POST", params.body, params.headers, None)
    except OAuth2Error as exc:
        headers, body, status = exc.headers, exc.json, exc.status_code
    answer = OAuthAnswer(status=status, headers=dict(headers), body=body or "")
    if status != 200:
        if family_was_live:  # DOT's reuse protection revoked the family of a rotated refresh token presented again
            with transaction.atomic():
                _end_work_of_family(ctx, presented, presented.token_family, "presented an already used refresh token")
        raise _refused(answer)
    issued = (
        get_access_token_model()
        .objects.select_related("user", "application")
        .get(token_checksum=_checksum(json.loads(body)["access_token"]))
    )
    _note_who(ctx, issued.application, issued.user)
    ctx.note_in_audit(scopes=issued.scope.split(), access_token_id=issued.pk)
    return answer


@operation("accounts.revoke_agent_token", risk=Risk.WRITE, permission="accounts.manage_users", target=lambda p: p.client_id, exposed=False)
def revoke_agent_token(ctx: Context, params: RevocationRequest) -> OAuthAnswer:
    """The revocation endpoint (/oauth/revoke/, RFC 7009): an OAuth client gives back one of its own tokens.
    Revoking the access token revokes its refresh token too, and the other way round: the authorization they
    belong to (their token family) is then revoked, and the work the agent left waiting under it ends — its
    jobs not started are cancelled, its pending approval requests withdrawn (counts in the audit event);
    a later consent to the same client does not revive it. Another client's token
    is not revoked (the answer is 200 all the same, as RFC 7009 §2.2 asks; the event says denied)."""
    _system_only(ctx)
    form = params.form()
    application = get_application_model().objects.filter(client_id=params.client_id).first() if params.client_id else None
    raw = form.get("token") or ""
    checksum = _checksum(raw)
    kinds = {"access_token": get_access_token_model(), "refresh_token": get_refresh_token_model()}
    order = ["refresh_token", "access_token"] if params.token_type_hint == "refresh_token" else ["access_token", "refresh_token"]
    kind, token = "", None
    for kind in order if raw else ():
        live = {"revoked__isnull": True} if kind == "refresh_token" else {}  # a revoked one has nothing left to revoke
        token = kinds[kind].objects.select_related("user", "application").filter(token_checksum=checksum, **live).first()
        if token is not None:
            break
    _note_who(ctx, application, None)
    own = token is not None and application is not None and token.application_id == application.pk
    # read before DOT revokes: revoking deletes the access token, and with it its link to its refresh token
    family = (token.token_family if kind == "refresh_token" else family_of(token)) if own else None
    with transaction.atomic():  # the authorization and the work it left waiting end together
        # as OAuthLibCore.create_revocation_response (oauthlib answers its own errors here)
        headers, body, status = get_oauthlib_core().server.create_revocation_response(params.uri, "POST", params.body, params.headers)
        if status == 200 and family is not None:
            _end_work_of_family(ctx, token, family, "gave its token back (RFC 7009)")
    answer = OAuthAnswer(status=status, headers=dict(headers), body=body or "")
    if status != 200:
        raise _refused(answer)
    if token is None:
        ctx.note_in_audit(revoked="none: an unknown or already revoked token")
        return answer
    _note_who(ctx, None, token.user)
    if not own:
        owner = f"{token.application.name or token.application.client_id}, #{token.application_id}" if token.application else "no client"
        raise OAuthRefused(answer, f"The token is another client's ({owner}): nothing was revoked.", "denied")
    ctx.note_in_audit(revoked=kind)
    return answer


def _end_work_of_family(ctx: Context, token, family, how: str) -> None:
    """One authorization of an agent (a token family) was revoked at a token endpoint — the client gave a token
    back, or DOT's reuse protection revoked the family: once no token of it is live, the work the agent left
    waiting under it ends as on the agents page (accounts.revoke_agent), for that authorization alone."""
    if token.user is None or not stored_grant(token.user, token.application_id, family).revoked:
        return
    client = token.application.name or token.application.client_id
    why = f"The OAuth agent {client} (#{token.application_id}) that requested it {how}: the authorization it asked under is revoked."
    end_waiting_work(ctx, token.user, agent_credential(token.application_id, family), why)
