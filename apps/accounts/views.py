from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.models import Group
from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_ratelimit.core import get_usage

from apps.audit.writer import record
from apps.core.middleware import client_ip
from apps.core.web import actor_of, console_view, require_perm

from .forms import LoginForm, TokenForm, UserForm
from .models import ApiToken
from .roles import ADMIN, ROLES

User = get_user_model()


class LoginView(auth_views.LoginView):
    """Django's login, with failed attempts limited per address and per username."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True
    form_class = LoginForm

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


def _audit(request, operation: str, target: str, params: dict | None = None, outcome: str = "ok", error: str = ""):
    record(
        operation=operation, outcome=outcome, channel="web", actor=actor_of(request), target=target, params=params or {},
        error=error, client_ip=client_ip(request), request_id=getattr(request, "request_id", ""),
    )  # fmt: skip


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
    initial = {"username": user.username, "email": user.email, "roles": _roles_of(user), "is_active": user.is_active} if user else None
    form = UserForm(request.POST or None, instance=user, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if user is not None and user.pk == request.user.pk and (ADMIN not in data["roles"] or not data["is_active"]):
            form.add_error("roles", "You cannot remove your own admin role or deactivate yourself.")
        else:
            with transaction.atomic():
                user = user or User(username=data["username"])
                user.username, user.email, user.is_active = data["username"], data["email"], data["is_active"]
                if data["password"]:
                    user.set_password(data["password"])
                user.save()
                user.groups.set(Group.objects.filter(name__in=data["roles"]))
            _audit(request, "accounts.user_save", user.username, {"roles": data["roles"], "active": data["is_active"], "new": pk is None})
            messages.success(request, f"Saved {user.username}.")
            return redirect("accounts:users")
    return render(request, "accounts/user_form.html", {"form": form, "edited": user})


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
    if not form.is_valid():
        tokens = ApiToken.objects.filter(user=request.user)
        return render(request, "accounts/tokens.html", {"tokens": tokens, "form": form}, status=422)
    token, raw = ApiToken.issue(request.user, form.cleaned_data["name"], form.cleaned_data["scopes"], form.expires_at)
    _audit(request, "accounts.token_create", str(token), {"scopes": token.scopes, "expires_at": token.expires_at.isoformat()})
    request.session["new_token"] = {"name": token.name, "value": raw}
    return redirect("accounts:tokens")


@console_view
@require_POST
def token_revoke(request, pk: int):
    token = get_object_or_404(ApiToken, pk=pk)
    if token.user_id != request.user.pk:
        require_perm(request, "accounts.manage_users")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        _audit(request, "accounts.token_revoke", str(token), {"owner": token.user.username})
        messages.success(request, f"Revoked {token}.")
    return redirect("accounts:tokens")
