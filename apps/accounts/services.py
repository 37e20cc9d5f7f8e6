"""Operations about accounts: the caller's own identity; users, roles and API tokens (the accounts pages write through them)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from pydantic import AfterValidator, BaseModel, Field, field_validator

from apps.core.errors import InvalidInput, PermissionDenied
from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from .models import ApiToken
from .roles import ADMIN, APPROVER, ROLES

User = get_user_model()


class WhoAmIInput(BaseModel):
    pass


class WhoAmI(BaseModel):
    user: str
    roles: list[str] = Field(description="The roles this call has: the user's, narrowed by the token's scopes.")
    token: str | None = Field(None, description="The public part of the API token (or the OAuth grant) the call came through.")
    token_expires_at: datetime | None = None


@operation("accounts.whoami", risk=Risk.READ)
def whoami(ctx: Context, params: WhoAmIInput) -> WhoAmI:
    """Who the caller is: user name, effective roles and — for an agent — the token's id and expiry.
    Call it first to learn which operations are open to you (risky ones need a human approver)."""
    token = ctx.actor.token
    return WhoAmI(
        user=ctx.actor.name,
        roles=sorted(ctx.actor.roles),
        token=token.public_id if token is not None else None,
        token_expires_at=token.expires_at if token is not None else None,
    )


def _known_roles(value: list[str]) -> list[str]:
    unknown = sorted(set(value) - set(ROLES))
    if unknown:
        raise ValueError(f"no such role: {', '.join(unknown)}")
    return sorted(set(value))


RoleNames = Annotated[list[str], AfterValidator(_known_roles)]


class SaveUserInput(BaseModel):
    id: int | None = Field(None, description="The user to change; none creates one.")
    username: str = Field(pattern=r"^[\w.@+-]{1,150}$")
    email: str = ""
    roles: RoleNames = Field(default_factory=list, description=f"Any of: {', '.join(ROLES)}.")
    teams: list[str] = Field(default_factory=list, description="Other groups (e.g. sre, security) approval policies may name.")
    password: str = Field("", json_schema_extra={"secret": True}, description="Empty keeps the current one.")
    is_active: bool = True

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if value:
            try:
                validate_email(value)
            except ValidationError:
                raise ValueError("Enter a valid email address.") from None
        return value

    @field_validator("teams")
    @classmethod
    def _teams(cls, value: list[str]) -> list[str]:
        teams = sorted({t.strip() for t in value if t.strip()})
        if set(teams) & set(ROLES) or any(len(t) > 150 for t in teams):
            raise ValueError("a team is a group other than a role, at most 150 characters")
        return teams


class SavedUser(BaseModel):
    id: int
    username: str
    roles: list[str]
    teams: list[str]


# Who can approve is itself a guard: approvers and admins vote, and teams fill a policy's group seats.
# Granting that power, or taking over an account that has it (new password, re-activation), waits for
# another person; everything else about users runs at once. The first approver of a new install is
# made from the shell (`seed_demo`, `createsuperuser`), where the guard cannot apply.
POWER_ROLES = frozenset({APPROVER, ADMIN})


def _power(roles, teams) -> set[str]:
    return {f"role:{r}" for r in roles if r in POWER_ROLES} | {f"team:{t}" for t in teams}


def _state(user) -> dict:
    if user is None:
        return {"exists": False, "power": [], "active": False}
    names = set(user.groups.values_list("name", flat=True))
    roles, teams = names & set(ROLES), names - set(ROLES)
    return {"exists": True, "power": sorted(_power(roles, teams)), "active": user.is_active}


def _user_change(params: SaveUserInput) -> tuple[dict, dict, list[str]]:
    """(before, after, why it lowers a guard)."""
    user = User.objects.filter(pk=params.id).first() if params.id is not None else None
    before = _state(user)
    after = {"exists": True, "power": sorted(_power(params.roles, params.teams)), "active": params.is_active}
    why = []
    if after["active"] and after["power"]:
        if set(after["power"]) - set(before["power"]):
            why.append(f"gives {', '.join(sorted(set(after['power']) - set(before['power'])))}")
        if params.password and before["exists"]:
            why.append("sets a new password on an account that can approve")
        if before["exists"] and not before["active"]:
            why.append("re-activates an account that can approve")
    return before, after, why


def plan_save_user(ctx: Context, params: SaveUserInput) -> dict:
    before, after, why = _user_change(params)
    return {"user": params.username, "before": before, "after": after, "password": "replaced" if params.password else "kept",
            "lowers": why}  # fmt: skip


@operation("accounts.save_user", risk=Risk.RISKY, guard=True, permission="accounts.manage_users", target=lambda p: p.username,
           approval_scope=lambda p: "accounts" if _user_change(p)[2] else None, planner=plan_save_user, exposed=False)  # fmt: skip
def save_user(ctx: Context, params: SaveUserInput) -> SavedUser:
    """Create or change a user: name, email, roles, teams (other groups), password, active. Giving someone the power
    to approve (approver or admin role, a team) or taking over such an account waits for another person's approval."""
    user = User.objects.filter(pk=params.id).first() if params.id is not None else None
    if params.id is not None and user is None:
        raise InvalidInput({"id": f"There is no user #{params.id}."})
    if User.objects.filter(username__iexact=params.username).exclude(pk=params.id).exists():
        raise InvalidInput({"username": "A user with this name already exists."})
    if user is not None and user.pk == ctx.actor.user_id and (ADMIN not in params.roles or not params.is_active):
        raise InvalidInput({"roles": "You cannot remove your own admin role or deactivate yourself."})
    if user is None and not params.password:
        raise InvalidInput({"password": "A new user needs a password."})
    if params.password:
        try:
            validate_password(params.password, user)
        except ValidationError as exc:
            raise InvalidInput({"password": " ".join(exc.messages)}) from None
    with transaction.atomic():
        user = user or User(username=params.username)
        user.username, user.email, user.is_active = params.username, params.email, params.is_active
        if params.password:
            user.set_password(params.password)
        user.save()
        groups = [Group.objects.get_or_create(name=name)[0] for name in params.teams]
        user.groups.set([*Group.objects.filter(name__in=params.roles), *groups])
    return SavedUser(id=user.pk, username=user.username, roles=params.roles, teams=params.teams)


class ApplySsoRolesInput(BaseModel):
    user_id: int
    username: str = Field(description="For the audit log's target.")
    roles: RoleNames = Field(description=f"The roles the provider's groups map to: any of {', '.join(ROLES)}.")
    groups: list[str] = Field(default_factory=list, description="The groups claim they were mapped from, for the record.")


class AppliedSsoRoles(BaseModel):
    username: str
    before: list[str]
    after: list[str]


@operation("accounts.apply_sso_roles", risk=Risk.WRITE, permission="accounts.manage_users", target=lambda p: p.username, exposed=False)
def apply_sso_roles(ctx: Context, params: ApplySsoRolesInput) -> AppliedSsoRoles:
    """Set a single-sign-on user's roles to those its provider groups map to (OIDC_ROLE_MAP); other
    groups stay. Run by the console at each sign-in: the provider, not a person, decides these roles."""
    if not ctx.actor.is_system:
        raise PermissionDenied("Roles of single-sign-on users come from the identity provider's groups.")
    user = User.objects.filter(pk=params.user_id).first()
    if user is None:
        raise InvalidInput({"user_id": f"There is no user #{params.user_id}."})
    with transaction.atomic():
        before = sorted(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        # m2m_changed drops this process's cached actors at once (accounts.signals)
        user.groups.remove(*Group.objects.filter(name__in=set(before) - set(params.roles)))
        user.groups.add(*Group.objects.filter(name__in=set(params.roles) - set(before)))
    return AppliedSsoRoles(username=user.username, before=before, after=params.roles)


class CreateTokenInput(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(min_length=1, description="Roles the token carries: a subset of yours.")
    expires_in_days: int = Field(30, ge=1, le=365)


class CreatedToken(BaseModel):
    id: int
    token: str = Field(description="The raw token, shown once and never stored.")
    scopes: list[str]
    expires_at: str


@operation("accounts.create_token", risk=Risk.WRITE, permission="accounts.use_api_tokens", target=lambda p: p.name, exposed=False)
def create_token(ctx: Context, params: CreateTokenInput) -> CreatedToken:
    """Issue an API token for yourself carrying some of your roles."""
    if ctx.actor.token is not None:
        raise PermissionDenied("A token cannot issue tokens; sign in to the console.")
    extra = sorted(set(params.scopes) - set(ctx.actor.roles))
    if extra:
        raise InvalidInput({"scopes": f"not roles of yours: {', '.join(extra)}"})
    token, raw = ApiToken.issue(ctx.user, params.name, params.scopes, timezone.now() + timedelta(days=params.expires_in_days))
    return CreatedToken(id=token.pk, token=raw, scopes=token.scopes, expires_at=token.expires_at.isoformat())


class RevokeTokenInput(BaseModel):
    id: int


class RevokedToken(BaseModel):
    id: int
    token: str
    owner: str


@operation("accounts.revoke_token", risk=Risk.WRITE, permission="accounts.use_api_tokens", target=lambda p: f"token {p.id}", exposed=False)
def revoke_token(ctx: Context, params: RevokeTokenInput) -> RevokedToken:
    """Revoke an API token: yours, or anyone's for a user manager."""
    token = ApiToken.objects.select_related("user").filter(pk=params.id).first()
    if token is None:
        raise InvalidInput({"id": f"There is no token #{params.id}."})
    if token.user_id != ctx.actor.user_id and not ctx.actor.has_perm("accounts.manage_users"):
        raise PermissionDenied("You may revoke your own tokens only.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])  # post_save drops this process's cached actor of the token
    return RevokedToken(id=token.pk, token=str(token), owner=token.user.username)
