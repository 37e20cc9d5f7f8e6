"""Logins, successful or not, go to the audit log."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from apps.audit.writer import record
from apps.core.middleware import client_ip

from .actors import Actor, forget_actors


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
    if "code_verifier" in credentials:  # authenticate() in the SSO callback: sso_views sends the refusal with its reason
        return
    refusal = credentials.get("single_sign_on")
    username = "" if refusal else str(credentials.get("username", ""))[:150]
    record(
        operation="accounts.login",
        outcome="denied",
        channel="web",
        actor_name=username,
        target=username or "single sign-on",
        error=f"single sign-on: {refusal}"[:300] if refusal else "wrong username or password",
        **_request_fields(request),
    )


@receiver([post_save, post_delete], sender=settings.AUTH_USER_MODEL)
@receiver([post_save, post_delete], sender="accounts.ApiToken")
@receiver([post_save, post_delete], sender="oauth2_provider.AccessToken")
@receiver(post_delete, sender="oauth2_provider.Application")
@receiver(m2m_changed, sender=get_user_model().groups.through)
def forget_cached_actors(sender, **kwargs):
    """A revoked token (API or OAuth), a deactivated user or a changed role stops counting in this process at once
    (other processes within ACTOR_CACHE_SECONDS)."""
    forget_actors()
