"""What every app's views share: the actor of a request, calling the gateway
from a view, and turning console errors into pages (never a stack trace)."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect

from . import gateway, hooks
from .errors import InvalidInput, OpsError
from .errors_views import error_response
from .forms import add_invalid_input
from .middleware import client_ip


def actor_of(request):
    if not hasattr(request, "_actor"):
        request._actor = hooks.actors().for_user(request.user)
    return request._actor


def call(request, name: str, params=None, reason: str = "", break_glass: bool = False) -> gateway.Outcome:
    return gateway.invoke(
        name,
        actor_of(request),
        params,
        "web",
        client_ip=client_ip(request),
        request_id=getattr(request, "request_id", ""),
        reason=reason,
        break_glass=break_glass,
    )


def call_from_form(
    request, form, name: str, params, *, reason: str = "", field_of=None, break_glass: bool = False
) -> tuple[gateway.Outcome | None, int]:
    """`call()` for a submitted form: (outcome, 200), or (None, status) with the errors on the
    form — each next to its field where the form has it (`field_of` maps a parameter path to a
    form field), the rest on top."""
    try:
        return call(request, name, params, reason=reason, break_glass=break_glass), 200
    except InvalidInput as exc:
        add_invalid_input(form, {(field_of(k) if field_of else k): v for k, v in exc.errors.items()})
        return None, exc.status_code
    except OpsError as exc:
        form.add_error(None, exc.message)
        return None, exc.status_code


def done_or_pending(request, outcome: gateway.Outcome, done: str, then):
    """After a write: say it is done and go to `then`, or — a change that lowers a guard — say it
    waits for someone else's approval and show the request."""
    if outcome.status == "pending":
        messages.info(request, f"{outcome.operation.title} needs another person's approval: request #{outcome.approval.pk} is waiting.")
        return redirect(outcome.approval)
    messages.success(request, done)
    return redirect(then)


def error_page(request, exc: OpsError, status: int | None = None):
    return error_response(request, exc.message, status or exc.status_code)


def console_view(view):
    """login_required, and an OpsError raised by the view becomes an error page."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except OpsError as exc:
            return error_page(request, exc)

    return wrapper


def require_perm(request, perm: str) -> None:
    from .errors import PermissionDenied

    if not actor_of(request).has_perm(perm):
        raise PermissionDenied("Your role does not allow this page.")
