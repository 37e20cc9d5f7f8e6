"""Single sign-on with OpenID Connect, on top of mozilla-django-oidc (docs/sso.md).

The library runs the authorization code flow (state, nonce, PKCE S256) and checks the ID token's
signature. This module adds what the console needs around it: the provider's endpoints from its
discovery document, users linked by (issuer, subject) only, the provider's issuer and audience
checked on every ID token, and roles set from the groups claim through OIDC_ROLE_MAP on every login.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import urlencode

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.db import IntegrityError, transaction
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings

from .models import SsoIdentity
from .roles import ADMIN, ROLES

User = get_user_model()


class ProviderUnavailable(Exception):
    """The provider's discovery document could not be read: single sign-on cannot start."""


# --- the provider's discovery document, read once per process ----------------------------------
_discovery: dict | None = None
_discovery_lock = threading.Lock()


def provider() -> dict:
    """The provider's /.well-known/openid-configuration, fetched at first use and kept for the process.
    A failed fetch is not kept: the next sign-in tries again."""
    global _discovery
    with _discovery_lock:
        if _discovery is None:
            _discovery = _fetch_discovery(settings.OIDC_ISSUER)
        return _discovery


def _fetch_discovery(issuer: str) -> dict:
    url = f"{issuer}/.well-known/openid-configuration"
    try:
        response = httpx.get(url, timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        document = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ProviderUnavailable(f"The identity provider's configuration at {url} could not be read ({exc}).") from exc
    # OpenID Connect Discovery 1.0 §4.3: the document names the very issuer it was fetched for.
    if document.get("issuer") != issuer:
        raise ProviderUnavailable(f"{url} names issuer {document.get('issuer')!r}, not {issuer!r}.")
    return document


def forget_provider() -> None:
    global _discovery
    with _discovery_lock:
        _discovery = None


# mozilla-django-oidc reads the provider's endpoints as settings; here they come from discovery.
DISCOVERED = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}


def sso_setting(attr: str, *default):
    """The library's settings lookup, with the provider's endpoints taken from its discovery document."""
    if attr in DISCOVERED:
        return provider()[DISCOVERED[attr]]
    return import_from_settings(attr, *default)


def end_session_url(id_token: str, post_logout_redirect_uri: str) -> str | None:
    """RP-initiated logout at the provider, when it advertises an end_session_endpoint."""
    try:
        endpoint = provider().get("end_session_endpoint")
    except ProviderUnavailable:
        return None  # the console session is over all the same
    if not endpoint:
        return None
    query = {"id_token_hint": id_token, "post_logout_redirect_uri": post_logout_redirect_uri, "client_id": settings.OIDC_RP_CLIENT_ID}
    return f"{endpoint}?{urlencode(query)}"


# --- groups claim -> roles ------------------------------------------------------------------
def role_map(text: str | None = None) -> dict[str, frozenset[str]]:
    """OIDC_ROLE_MAP parsed: "ops-admins=admin,ops=operator,ops=viewer" -> {group: roles}.
    A group may be named more than once; an unknown role stops the console from starting."""
    text = settings.OIDC_ROLE_MAP if text is None else text
    mapping: dict[str, set[str]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        group, sep, role = (s.strip() for s in item.rpartition("="))
        if not sep or not group or role not in ROLES:
            raise ImproperlyConfigured(f"OIDC_ROLE_MAP: {item!r} is not group=role with a role among {', '.join(ROLES)}.")
        mapping.setdefault(group, set()).add(role)
    return {group: frozenset(roles) for group, roles in mapping.items()}


def groups_of(claims: dict) -> list[str]:
    groups = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    return [groups] if isinstance(groups, str) else [str(g) for g in groups]


def roles_for(groups: list[str]) -> set[str]:
    mapping = role_map()
    return {role for group in groups for role in mapping.get(group, ())}


def apply_roles(user, groups: list[str], request) -> None:
    """Make the user's roles those its groups map to — through the gateway, so each change is audited.
    Other groups of the user (teams) are the console's own and stay as they are."""
    from apps.core.gateway import invoke
    from apps.core.middleware import client_ip

    from .actors import Actor

    roles = roles_for(groups)
    if roles == set(user.groups.filter(name__in=ROLES).values_list("name", flat=True)):
        return
    params = {"user_id": user.pk, "username": user.username, "roles": sorted(roles), "groups": sorted(groups)[:100]}
    invoke("accounts.apply_sso_roles", Actor.system(), params, "web", client_ip=client_ip(request),
           request_id=getattr(request, "request_id", ""))  # fmt: skip


# --- the backends ---------------------------------------------------------------------------
class SsoRefused(SuspiciousOperation):
    """A sign-in the console refuses; its message is shown and audited (sso_views._refused)."""


class SsoBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend, with users found by (issuer, sub) and roles from the groups claim."""

    get_settings = staticmethod(sso_setting)

    def __init__(self, *args, **kwargs):
        # The library reads the endpoints here; Django builds backends for every sign-in (passwords too)
        # and every request's session, so they are read only when a code is exchanged (properties below).
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None
        self.UserModel = User

    OIDC_OP_TOKEN_ENDPOINT = property(lambda self: sso_setting("OIDC_OP_TOKEN_ENDPOINT"))
    OIDC_OP_USER_ENDPOINT = property(lambda self: sso_setting("OIDC_OP_USER_ENDPOINT"))
    OIDC_OP_JWKS_ENDPOINT = property(lambda self: sso_setting("OIDC_OP_JWKS_ENDPOINT"))

    def get_or_create_user(self, access_token, id_token, payload):
        """`payload` is the ID token, its signature and nonce checked by the library, which turns a
        refusal into "no user"; the reason is kept on the request for the audit log (sso_views)."""
        try:
            return self._sign_in(access_token, id_token, payload)
        except SsoRefused as exc:
            self.request.sso_refusal = str(exc)
            raise

    def _sign_in(self, access_token, id_token, payload):
        check_issuer_and_audience(payload)
        claims = merged_claims(payload, self.get_userinfo(access_token, id_token, payload))
        user = linked_user(claims)
        if not user.is_active:
            raise SsoRefused(f"{user.username} is deactivated")
        apply_roles(user, groups_of(claims), self.request)
        return user

    def get_user(self, user_id):
        # The library's get_user skips Django's is_active check; a deactivated user's session ends.
        user = super().get_user(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None


def check_issuer_and_audience(payload: dict) -> None:
    """The library leaves `iss` and `aud` unchecked: a token minted for another client is refused."""
    if payload.get("iss") != settings.OIDC_ISSUER:
        raise SsoRefused(f"ID token issued by {payload.get('iss')!r}, not {settings.OIDC_ISSUER!r}")
    audience = payload.get("aud")
    audience = [audience] if isinstance(audience, str) else list(audience or [])
    if settings.OIDC_RP_CLIENT_ID not in audience:
        raise SsoRefused("ID token not meant for this console (aud)")
    if len(audience) > 1 and payload.get("azp") != settings.OIDC_RP_CLIENT_ID:
        raise SsoRefused("ID token authorized for another party (azp)")
    if not payload.get("sub"):
        raise SsoRefused("ID token without a subject")


def merged_claims(id_token: dict, userinfo: dict) -> dict:
    """The ID token's claims completed by the userinfo response (providers put groups in either);
    the userinfo must be about the same subject, and iss/sub are always the checked ID token's."""
    if userinfo.get("sub") != id_token["sub"]:  # OpenID Connect Core §5.3.2
        raise SsoRefused("the userinfo response is about another subject than the ID token")
    return {**id_token, **userinfo, "iss": id_token["iss"], "sub": id_token["sub"]}


def linked_user(claims: dict):
    """The user linked to (iss, sub), created with a name no one else has on first sign-in.
    Never matched by email or username: those are whatever the provider lets people type."""
    identity = SsoIdentity.objects.select_related("user").filter(issuer=claims["iss"], subject=claims["sub"]).first()
    if identity is not None:
        return identity.user
    base = _username_base(claims)
    for attempt in range(1, 100):
        username = base if attempt == 1 else f"{base[:140]}-{attempt}"
        if User.objects.filter(username__iexact=username).exists():
            continue
        try:
            with transaction.atomic():
                user = User(username=username, email=str(claims.get("email") or "")[:254])
                user.set_unusable_password()  # signs in through the provider only
                user.save()
                SsoIdentity.objects.create(user=user, issuer=claims["iss"], subject=claims["sub"])
                return user
        except IntegrityError:  # the same name or identity created meanwhile by a parallel sign-in
            identity = SsoIdentity.objects.select_related("user").filter(issuer=claims["iss"], subject=claims["sub"]).first()
            if identity is not None:
                return identity.user
    raise SsoRefused(f"no free username for {base!r}")


def _username_base(claims: dict) -> str:
    raw = claims.get("preferred_username") or str(claims.get("email") or "").split("@")[0] or f"sso-{claims['sub']}"
    return re.sub(r"[^\w.@+-]", "-", str(raw))[:150] or "sso-user"


class LocalPasswordBackend(ModelBackend):
    """Django's password sign-in. Under OIDC_ONLY it admits only a local admin with no provider
    identity: the break-glass account for when the provider is down."""

    def user_can_authenticate(self, user) -> bool:
        if not super().user_can_authenticate(user):
            return False
        if not settings.OIDC_ONLY:
            return True
        is_admin = user.is_superuser or user.groups.filter(name=ADMIN).exists()
        return is_admin and not user.sso_identities.exists()
