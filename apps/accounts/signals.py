"""Logins, successful or not, go to the audit log."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from apps.audit.writer import record
from apps.core.middleware import client_ip

from .actors import Actor


def _request_fields(request) -> dict:
    if request is None:
        return {}
    return {"client_ip": client_ip(request), "request_id": getattr(request, "request_id", "")}


@receiver(user_logged_in)
def audit_login(sender, request, user, **kwargs):
    record(
        operation="accounts.login",
        outcome="ok",
        channel="web",
        actor=Actor.for_user(user),
        target=user.username,
        **_request_fields(request),
    )


@receiver(user_logged_out)
def audit_logout(sender, request, user, **kwargs):
    if user is not None:
        record(
            operation="accounts.logout",
            outcome="ok",
            channel="web",
            actor=Actor.for_user(user),
            target=user.username,
            **_request_fields(request),
        )


@receiver(user_login_failed)
def audit_login_failure(sender, credentials, request=None, **kwargs):
    username = str(credentials.get("username", ""))[:150]
    record(
        operation="accounts.login",
        outcome="denied",
        channel="web",
        actor_name=username,
        target=username,
        error="wrong username or password",
        **_request_fields(request),
    )
