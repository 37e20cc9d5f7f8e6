"""Per-user API tokens for MCP clients and scripts.

A token is shown once; only its SHA-256 is stored (the token is 256 bits of
randomness, so a slow hash would add nothing). Its scopes are a subset of the
owner's roles, so a token can only narrow what its user may do.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

TOKEN_PREFIX = "opc_"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def usable(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True, user__is_active=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    lookup = models.CharField(max_length=12, unique=True, help_text="Public part of the token, shown in lists.")
    digest = models.CharField(max_length=64)
    scopes = models.JSONField(default=list, help_text="Role names; a subset of the owner's roles.")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()
    kind = "api"  # an OAuth access token is an oauth_server.AgentGrant

    class Meta:
        ordering = ["-created_at"]
        permissions = [("manage_users", "Manage users, roles and API tokens"), ("use_api_tokens", "Issue and revoke one's own API tokens")]

    def __str__(self) -> str:
        return f"{self.name} ({TOKEN_PREFIX}{self.lookup}…)"

    @classmethod
    def issue(cls, user, name: str, scopes: list[str], expires_at=None) -> tuple[ApiToken, str]:
        """Create a token; returns it with the raw value, which is never stored."""
        lookup = secrets.token_hex(6)
        raw = f"{TOKEN_PREFIX}{lookup}_{secrets.token_urlsafe(32)}"
        token = cls.objects.create(
            user=user, name=name, lookup=lookup, digest=hash_token(raw), scopes=sorted(scopes), expires_at=expires_at
        )
        return token, raw

    @classmethod
    def authenticate(cls, raw: str) -> ApiToken | None:
        """The usable token matching `raw`, or None. Marks it used."""
        lookup = cls.lookup_of(raw)
        if lookup is None:
            return None
        token = cls.objects.usable().select_related("user").filter(lookup=lookup).first()
        if token is None or not secrets.compare_digest(token.digest, hash_token(raw)):
            return None
        now = timezone.now()
        # Touch at most once a minute: last-used is for people, not a hot write path.
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            cls.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return token

    @staticmethod
    def lookup_of(raw: str) -> str | None:
        """The public part of a raw token (`opc_<lookup>_<secret>`), or None if it has not that shape."""
        if not raw.startswith(TOKEN_PREFIX) or raw.count("_") < 2:
            return None
        return raw[len(TOKEN_PREFIX) :].split("_", 1)[0]

    @property
    def public_id(self) -> str:
        return f"{TOKEN_PREFIX}{self.lookup}"

    @property
    def credential(self) -> str:
        """How jobs and approval requests name this token, to act through it later (Actor.for_credential)."""
        return f"api:{self.pk}"

    def refusal(self) -> str:
        """Why the token may no longer act ("" when it may)."""
        if ApiToken.objects.usable().filter(pk=self.pk).exists():
            return ""
        return f"The API token {self} that requested this job was revoked or has expired. Nothing ran."

    @property
    def state(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= timezone.now():
            return "expired"
        return "active"


class SsoIdentity(models.Model):
    """Who a console user is at an OpenID provider: the (issuer, subject) pair of its ID tokens.

    Single sign-on finds the user by this pair and nothing else — never by email or username, which
    an attacker may be able to register at the provider under a victim's name."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identities")
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="accounts_sso_identity_unique")]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"
