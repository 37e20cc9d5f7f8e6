"""Who is calling: a user, possibly through one of their API tokens or an agent's OAuth access token."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import Permission
from django.utils import timezone

from .roles import ADMIN, ROLES


@dataclass(frozen=True)
class Actor:
    user: object | None  # a User; None only for the system actor
    token: object | None = None  # what the call came through: an ApiToken, an OAuth AgentGrant, a GoneCredential (credentials.py)
    roles: frozenset[str] = frozenset()
    perms: frozenset[str] = field(default=frozenset(), repr=False)

    @classmethod
    def for_user(cls, user, token=None, scopes=None) -> Actor:
        """The actor's roles are the user's groups, narrowed by the token's scopes (and by `scopes`, if given)."""
        if user is None or not user.is_authenticated or not user.is_active:
            return cls(user=None, token=None)
        roles = set(roles_of(user))
        if token is not None:
            roles &= set(token.scopes)
        if scopes is not None:
            roles &= set(scopes)
        return cls(user=user, token=token, roles=frozenset(roles), perms=permissions_of(frozenset(roles)))

    @classmethod
    def for_credential(cls, user, credential: str, scopes) -> Actor:
        """The actor of work stored earlier (a job, an approval request) with the `credential` and `scopes` of
        the actor that asked: the user's roles now, narrowed by those scopes and by what the credential still
        grants. A revoked credential still names itself (audit), and `refusal()` then says why it may not act."""
        if not credential or user is None:  # a person's session; a deleted user, whom for_user refuses
            return cls.for_user(user)
        from .credentials import resolve

        return cls.for_user(user, resolve(user, credential), scopes=scopes)

    @classmethod
    def system(cls) -> Actor:
        """Scheduled work the console does on its own behalf (checkpoints, expiry, escalation)."""
        return cls(user=None, token=None, roles=frozenset({"system"}), perms=frozenset({"*"}))

    @property
    def is_system(self) -> bool:
        return "system" in self.roles

    @property
    def is_authenticated(self) -> bool:
        return self.user is not None or self.is_system

    @property
    def name(self) -> str:
        return "system" if self.is_system else getattr(self.user, "username", "anonymous")

    @property
    def user_id(self) -> int | None:
        return getattr(self.user, "pk", None)

    @property
    def credential(self) -> str:
        """The credential the call came through, as work it starts stores it (accounts.credentials): "" for none."""
        return self.token.credential if self.token is not None else ""

    @property
    def scopes(self) -> list[str]:
        """What that credential lets this actor do, stored beside it: its roles now (never more than it was granted)."""
        return sorted(self.roles) if self.token is not None else []

    def refusal(self) -> str:
        """Why the credential this actor acts through may no longer act; "" when it may (or there is none)."""
        return self.token.refusal() if self.token is not None else ""

    @property
    def rate_key(self) -> str:
        """Rate limits count per token for API calls, per user otherwise."""
        if self.token is not None:
            return f"token:{self.token.lookup}"
        return f"user:{self.name}"

    def has_perm(self, perm: str) -> bool:
        return "*" in self.perms or perm in self.perms


# Who may do what is read on every call and changes rarely. Each process keeps a user's roles
# for ACTOR_CACHE_SECONDS (1 s by default): a role change is seen by every process within that
# bound, and at once by the process that made it (accounts.signals clears the cache).
# An entry is stamped with the time its read began, and a read that a change of this process
# overtook (forget_actors ran meanwhile) is used once but not kept.
clock = time.monotonic
_roles_cache: dict[int, tuple[float, frozenset[str]]] = {}
_forgotten = 0  # how many times forget_actors ran
_lock = threading.Lock()


def _keep(cache: dict, key, entry: tuple, generation: int) -> None:
    with _lock:
        if generation == _forgotten:
            cache[key] = entry


def _roles_entry(user) -> tuple[float, frozenset[str]]:
    """A user's roles, and when they were read."""
    hit = _roles_cache.get(user.pk)
    if hit is not None and clock() - hit[0] < settings.ACTOR_CACHE_SECONDS:
        return hit
    read_at, generation = clock(), _forgotten
    roles = set(user.groups.values_list("name", flat=True)) & set(ROLES)
    if user.is_superuser:
        roles.add(ADMIN)
    entry = (read_at, frozenset(roles))
    _keep(_roles_cache, user.pk, entry, generation)
    return entry


def roles_of(user) -> frozenset[str]:
    return _roles_entry(user)[1]


_tokens: dict[str, tuple[float, Actor]] = {}
_TOKENS_MAX = 10_000  # only usable tokens are kept; a bound all the same


def actor_for_token(raw: str, *, cached_only: bool = False) -> Actor | None:
    """The actor of a raw API token or OAuth access token, or None when the token is not usable (then refused).
    With cached_only, None also means "not known to this process yet": no database read."""
    from . import oauth_server
    from .models import ApiToken, hash_token

    key = hash_token(raw)
    hit = _tokens.get(key)
    if hit is not None and clock() - hit[0] < settings.ACTOR_CACHE_SECONDS:
        expires = hit[1].token.expires_at
        if expires is None or expires > timezone.now():
            return hit[1]
    if cached_only:
        return None
    read_at, generation = clock(), _forgotten
    token = oauth_server.authenticate(raw) if raw.startswith(oauth_server.ACCESS_PREFIX) else ApiToken.authenticate(raw)
    if token is not None:  # the actor is as old as the roles it is built from (they may come from the cache)
        read_at = min(read_at, _roles_entry(token.user)[0])
    actor = _usable_actor(token)
    if actor is None:
        _tokens.pop(key, None)
        return None
    if len(_tokens) >= _TOKENS_MAX:
        _tokens.clear()
    _keep(_tokens, key, (read_at, actor), generation)
    return actor


def _usable_actor(token) -> Actor | None:
    actor = Actor.for_user(token.user, token) if token is not None else None
    return actor if actor is not None and actor.is_authenticated else None


def forget_actors() -> None:
    """A user, their roles or a token changed in this process: forget what it cached."""
    global _forgotten
    with _lock:
        _forgotten += 1
        _roles_cache.clear()
        _tokens.clear()


# Role -> permission sets change only when apps.accounts.roles.sync_roles runs
# (after migrate); a short-lived per-process cache saves a join on every call.
_PERMS_TTL = 60.0
_perms_cache: dict[frozenset[str], tuple[float, frozenset[str]]] = {}


def permissions_of(roles: frozenset[str]) -> frozenset[str]:
    hit = _perms_cache.get(roles)
    if hit is not None and time.monotonic() - hit[0] < _PERMS_TTL:
        return hit[1]
    rows = Permission.objects.filter(group__name__in=roles).values_list("content_type__app_label", "codename")
    perms = frozenset(f"{app}.{codename}" for app, codename in rows)
    _perms_cache[roles] = (time.monotonic(), perms)
    return perms


def forget_permissions() -> None:
    _perms_cache.clear()
