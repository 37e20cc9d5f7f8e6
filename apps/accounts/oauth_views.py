"""The OAuth pages and endpoints of the console as an authorization server (docs/oauth.md): the consent page,
open dynamic client registration (rate-limited, public clients only), and the authorized-agents page."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from oauth2_provider.models import get_access_token_model, get_application_model
from oauth2_provider.oauth2_backends import get_oauthlib_core
from oauth2_provider.views import AuthorizationView

from apps.core.errors import InvalidInput, OpsError
from apps.core.gateway import invoke
from apps.core.middleware import client_ip
from apps.core.web import actor_of, call, call_from_form, console_view

from . import oauth_limits
from .actors import Actor
from .agent_services import consentable
from .agent_tokens import OAuthRefused, client_id_of


class ConsentView(AuthorizationView):
    """GET shows who asks for what; POST (allow) consents through the gateway (accounts.authorize_agent)."""

    template_name = "accounts/oauth_consent.html"

    def get(self, request, *args, **kwargs):
        if "approval_prompt" in request.GET:  # the consent page is always shown: a client cannot ask to skip it
            request.GET = request.GET.copy()
            request.GET.pop("approval_prompt")
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        asked = list(context.get("scopes") or [])
        granted = consentable(asked, actor_of(self.request).roles)
        return {
            **context,
            "granted": granted,
            "not_held": sorted(set(asked) - set(granted)),
            "resource_ok": context.get("resource") == settings.MCP_RESOURCE_URL,
            "mcp_resource": settings.MCP_RESOURCE_URL,
        }

    def form_valid(self, form):
        data = form.cleaned_data
        application = get_application_model().objects.filter(client_id=data["client_id"]).first()
        shown = {
            "application": application,
            "scopes": data["scope"].split(),
            "redirect_uri": data["redirect_uri"],
            "resource": data.get("resource"),
        }
        if application is None or not application.redirect_uri_allowed(data["redirect_uri"]):
            form.add_error(None, "This client does not use that redirect URI.")
            return self.render_to_response(self.get_context_data(form=form, **shown), status=400)
        if not data.get("allow"):  # refused: the client hears access_denied, nothing is stored
            return self.redirect(_with_query(data["redirect_uri"], error="access_denied", state=data.get("state") or ""), application)
        params = {
            "client_id": data["client_id"],
            "redirect_uri": data["redirect_uri"],
            "scopes": data["scope"].split(),
            "resource": data.get("resource") or "",
            "state": data.get("state") or "",
            "code_challenge": data.get("code_challenge") or "",
            "code_challenge_method": data.get("code_challenge_method") or "",
        }
        outcome, status = call_from_form(self.request, form, "accounts.authorize_agent", params)
        if outcome is None:
            return self.render_to_response(self.get_context_data(form=form, **shown), status=status)
        return self.redirect(outcome.result.redirect_to, application)


def _with_query(uri: str, **params) -> str:
    return uri + ("&" if "?" in uri else "?") + urlencode({k: v for k, v in params.items() if v})


@csrf_exempt  # an API endpoint called without cookies: no session to forge
@require_POST
def register(request):
    """RFC 7591 registration, open to any MCP client but rate-limited per address, and only for public
    clients of the authorization code grant (RFC 7591 §3.2.1 lets the server replace what a client asks,
    so every client is public: PKCE, no secret). Runs `accounts.register_agent` as the system."""
    if (limited := oauth_limits.refusal(request, "register", "")) is not None:
        return limited
    try:
        data = json.loads(request.body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return _refused("invalid_client_metadata", "The body must be a JSON object.")
    params = {"client_name": str(data.get("client_name") or "")[:100], "redirect_uris": data.get("redirect_uris")}
    params |= {key: data[key] for key in ("grant_types", "response_types") if data.get(key)}
    try:
        outcome = invoke("accounts.register_agent", Actor.system(), params, "web",
                         client_ip=client_ip(request), request_id=getattr(request, "request_id", ""))  # fmt: skip
    except InvalidInput as exc:
        error = "invalid_redirect_uri" if any(k.startswith("redirect_uris") for k in exc.errors) else "invalid_client_metadata"
        return _refused(error, "; ".join(f"{k}: {v}" for k, v in exc.errors.items()))
    return JsonResponse(outcome.result.model_dump(), status=201)


def _refused(error: str, description: str, status: int = 400, **headers: str) -> JsonResponse:
    return JsonResponse({"error": error, "error_description": description}, status=status, headers=headers)


@csrf_exempt  # called by OAuth clients, without cookies
@require_POST
def token(request):
    """The token endpoint: a code or a refresh token exchanged (`accounts.issue_agent_token`), DOT's answer sent;
    limited per client address and per client_id (`oauth_limits`)."""
    return _token_endpoint(request, "token", "accounts.issue_agent_token", grant_type=request.POST.get("grant_type", "")[:100])


@csrf_exempt
@require_POST
def revoke_token(request):
    """RFC 7009 revocation: a client gives back one of its tokens (`accounts.revoke_agent_token`), DOT's answer sent;
    limited per client address (`oauth_limits`)."""
    return _token_endpoint(request, "revoke", "accounts.revoke_agent_token", token_type_hint=request.POST.get("token_type_hint", "")[:100])


def _token_endpoint(request, endpoint: str, name: str, **shown: str) -> HttpResponse:
    """Runs a token endpoint's operation as the system for the calling client, with the request as DOT's
    OAuthLibCore hands it to oauthlib (the code, tokens and secrets in it are never audited), and answers
    exactly as DOT's TokenView / RevokeTokenView would: oauthlib's status, headers and body. A request over
    the endpoint's rate limits is answered 429 before anything runs."""
    client_id = client_id_of(request.POST, request.META.get("HTTP_AUTHORIZATION", ""))[:200]
    if (limited := oauth_limits.refusal(request, endpoint, client_id)) is not None:
        return limited
    uri, _method, body, headers = get_oauthlib_core()._extract_params(request)
    params = {
        "client_id": client_id,
        "uri": uri,
        "body": body,
        "headers": {key: value for key, value in headers.items() if isinstance(value, str)},
        **shown,
    }
    try:
        answer = invoke(
            name, Actor.system(), params, "web", client_ip=client_ip(request), request_id=getattr(request, "request_id", "")
        ).result
    except OAuthRefused as exc:
        answer = exc.answer
    except InvalidInput as exc:
        if endpoint == "token":
            oauth_limits.count_failure(request, client_id)
        return _refused("invalid_request", "; ".join(f"{k}: {v}" for k, v in exc.errors.items()), **NO_STORE)
    except OpsError as exc:  # already audited; the client hears a server error in OAuth's form
        return _refused("server_error", exc.message, status=max(exc.status_code, 500), **NO_STORE)
    if endpoint == "token" and answer.status >= 400:  # oauthlib refused it: a wrong code, secret, verifier or token
        oauth_limits.count_failure(request, client_id)
    response = HttpResponse(content=answer.body, status=answer.status)
    for key, value in answer.headers.items():
        response[key] = value
    return response


NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@console_view
def agent_list(request):
    """The OAuth agents you authorized, with what they may do: a revoke button each."""
    actor = actor_of(request)
    manage_all = actor.has_perm("accounts.manage_users") and request.GET.get("all") == "1"
    tokens = get_access_token_model().objects.filter(application__isnull=False, user__isnull=False).select_related("application", "user")
    if not manage_all:
        tokens = tokens.filter(user=request.user)
    agents: dict[tuple[int, int], dict] = {}
    for token in tokens.order_by("-created")[:500]:
        agent = agents.setdefault(
            (token.user_id, token.application_id),
            {"application": token.application, "user": token.user, "scopes": set(), "last": token.created, "expires": token.expires},
        )
        agent["scopes"] |= set(token.scope.split())
        agent["expires"] = max(agent["expires"], token.expires)
    rows = [{**a, "scopes": sorted(a["scopes"])} for a in agents.values()]
    return render(request, "accounts/agents.html", {"agents": rows, "manage_all": manage_all})


@console_view
@require_POST
def agent_revoke(request, pk: int):
    user_id = request.POST.get("user")
    outcome = call(request, "accounts.revoke_agent", {"application_id": pk, "user_id": int(user_id) if user_id else None})
    revoked = outcome.result
    ended = f"{revoked.jobs_cancelled} queued job(s) cancelled, {revoked.requests_withdrawn} approval request(s) withdrawn"
    messages.success(request, f"Revoked {revoked.client}: it can no longer act as that user; {ended}.")
    return redirect("accounts:agents")
