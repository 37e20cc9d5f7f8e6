"""The pages of single sign-on: start at the provider, come back, sign out there too (docs/sso.md).
Routed only when OIDC_ISSUER is set."""

from __future__ import annotations

import requests
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import SuspiciousOperation
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from .actors import roles_of
from .sso import ProviderUnavailable, end_session_url, sso_setting


def _refused(request, reason: str, status: int):
    """Every way a single sign-on can fail: one audit event (accounts.signals, as for a wrong password)
    and one plain page."""
    user_login_failed.send(sender=__name__, credentials={"single_sign_on": reason}, request=request)
    return render(request, "accounts/sso_refused.html", {"reason": reason}, status=status)


class SsoStartView(OIDCAuthenticationRequestView):
    """Sends the browser to the provider with state, nonce and a PKCE S256 challenge (the library's)."""

    get_settings = staticmethod(sso_setting)

    def __init__(self, *args, **kwargs):
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)  # endpoint read in get()
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID

    def get(self, request):
        try:
            self.OIDC_OP_AUTH_ENDPOINT = sso_setting("OIDC_OP_AUTHORIZATION_ENDPOINT")
        except ProviderUnavailable as exc:
            return _refused(request, str(exc), 503)
        return super().get(request)


class SsoCallbackView(OIDCAuthenticationCallbackView):
    """The provider's redirect back: the library checks state, exchanges the code with the PKCE
    verifier and checks the ID token's nonce; SsoBackend finds the user and sets its roles."""

    get_settings = staticmethod(sso_setting)

    def get(self, request):
        try:
            return super().get(request)
        except SuspiciousOperation as exc:  # unknown state, nonce mismatch, bad signature
            return _refused(request, str(exc), 400)
        except (requests.RequestException, ProviderUnavailable) as exc:  # e.g. the code or PKCE verifier refused
            return _refused(request, f"the provider did not accept the sign-in ({type(exc).__name__})", 403)

    def login_failure(self):
        reason = getattr(self.request, "sso_refusal", "") or self.request.GET.get("error_description") or self.request.GET.get("error")
        return _refused(self.request, reason or "the sign-in was not completed", 403)

    @property
    def success_url(self):
        if not roles_of(self.user):
            return reverse("accounts:no_role")
        return super().success_url


def no_role(request):
    """Where a single-sign-on user whose groups map to no role lands."""
    if not request.user.is_authenticated:
        return redirect(settings.LOGIN_URL)
    return render(request, "accounts/no_role.html", {"groups_claim": settings.OIDC_GROUPS_CLAIM}, status=403)


class SsoLogoutView(auth_views.LogoutView):
    """Ends the console session, then — for a single-sign-on session, when the provider advertises an
    end_session_endpoint — the provider's session too (RP-initiated logout)."""

    def post(self, request, *args, **kwargs):
        id_token = request.session.get("oidc_id_token")
        response = super().post(request, *args, **kwargs)
        if id_token:
            url = end_session_url(id_token, request.build_absolute_uri(reverse(settings.LOGOUT_REDIRECT_URL)))
            if url:
                return HttpResponseRedirect(url)
        return response
