from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django_ratelimit.core import get_usage

from apps.audit.writer import record
from apps.core.middleware import client_ip
from apps.core.web import actor_of, call, call_from_form, console_view, done_or_pending, require_perm

from .forms import LoginForm, TokenForm, UserForm
from .models import ApiToken
from .roles import ADMIN, ROLES

User = get_user_model()


class LoginView(auth_views.LoginView):
    """Django's login, with failed attempts limited per address and per username."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True
    form_class = LoginForm

    def get_context_data(self, **kwargs):
        # OIDC_ONLY shows the password form only on ?local=1: the break-glass admin's way in (docs/sso.md).
        local = not settings.OIDC_ONLY or self.request.GET.get("local") == "1" or self.request.method == "POST"
        return {**super().get_context_data(**kwargs), "sso_enabled": settings.SSO_ENABLED, "show_password_form": local}

    def post(self, request, *args, **kwargs):
        if self._failures_exceeded(request, count_this_one=False):
            username = request.POST.get("username", "")[:150]
            record(
                operation="accounts.login", outcome="denied", channel="web", actor_name=username, target=username,
                error="too many login attempts", client_ip=client_ip(request), request_id=getattr(request, "request_id", ""),
            )  # fmt: skip
            form = self.get_form()
            form.limited = True
            form.is_valid()  # refuses without checking the password (no second audit row, no hashing work)
            return self.render_to_response(self.get_context_data(form=form), status=429)
        response = super().post(request, *args, **kwargs)
        if not request.user.is_authenticated:  # a failed attempt: it counts
            self._failures_exceeded(request, count_this_one=True)
        return response

    @staticmethod
    def _failures_exceeded(request, *, count_this_one: bool) -> bool:
        """Failed attempts so far, per address and per username, against LOGIN_RATE_LIMIT."""
        exceeded = False
        for key in ("ip", "post:username"):
            usage = get_usage(request, group="login", key=key, rate=settings.LOGIN_RATE_LIMIT, method="POST", increment=count_this_one)
            exceeded |= usage is not None and usage["count"] >= usage["limit"]
        return exceeded


def _roles_of(user) -> list[str]:
    roles = [g for g in user.groups.values_list("name", flat=True) if g in ROLES]
    return sorted(set(roles) | ({ADMIN} if user.is_superuser else set()))


@console_view
def user_list(request):
    require_perm(request, "accounts.manage_users")
    users = User.objects.order_by("username").prefetch_related("groups")
    page = Paginator(users, 50).get_page(request.GET.get("page"))
    return render(request, "accounts/users.html", {"page": page})


@console_view
def user_edit(request, pk: int | None = None):
    require_perm(request, "accounts.manage_users")
    user = get_object_or_404(User, pk=pk) if pk else None
    initial = None
    if user is not None:
        groups = list(user.groups.values_list("name", flat=True))
        teams = ", ".join(sorted(g for g in groups if g not in ROLES))
        initial = {"username": user.username, "email": user.email, "roles": _roles_of(user), "teams": teams, "is_active": user.is_active}
    form, status = UserForm(request.POST or None, initial=initial), 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            outcome, status = call_from_form(request, form, "accounts.save_user", {**form.cleaned_data, "id": pk})
            if outcome:
                return done_or_pending(request, outcome, f"Saved {form.cleaned_data['username']}.", "accounts:users")
    return render(request, "accounts/user_form.html", {"form": form, "edited": user}, status=status)


@console_view
def token_list(request):
    actor = actor_of(request)
    manage_all = actor.has_perm("accounts.manage_users") and request.GET.get("all") == "1"
    tokens = ApiToken.objects.select_related("user")
    if not manage_all:
        tokens = tokens.filter(user=request.user)
    form = TokenForm(roles=actor.roles)
    created = request.session.pop("new_token", None)  # shown once, then gone
    return render(request, "accounts/tokens.html", {"tokens": tokens[:200], "form": form, "created": created, "manage_all": manage_all})


@console_view
@require_POST
def token_create(request):
    actor = actor_of(request)
    form = TokenForm(request.POST, roles=actor.roles)
    outcome, status = None, 422
    if form.is_valid():
        outcome, status = call_from_form(request, form, "accounts.create_token", form.cleaned_data)
    if outcome is None:
        tokens = ApiToken.objects.filter(user=request.user)
        return render(request, "accounts/tokens.html", {"tokens": tokens, "form": form}, status=status)
    request.session["new_token"] = {"name": form.cleaned_data["name"], "value": outcome.result.token}
    return redirect("accounts:tokens")


@console_view
@require_POST
def token_revoke(request, pk: int):
    outcome = call(request, "accounts.revoke_token", {"id": pk})  # refused: an error page (console_view)
    messages.success(request, f"Revoked {outcome.result.token}.")
    return redirect("accounts:tokens")
