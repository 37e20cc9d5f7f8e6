"""Hooks the apps above core plug in from their AppConfig.ready(): core knows no app above it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q

log = logging.getLogger(__name__)

# (ctx, params) -> None, called on the worker once a job is claimed and before its operation runs —
# once per job: a job resumed after its worker died continues what they admitted (Job.admitted).
# A hook stops the job by raising an OpsError (e.g. approvals: the plan drifted, or the approval already ran).
_job_start: dict[str, Callable] = {}


def on_job_start(name: str, hook: Callable) -> None:
    _job_start[name] = hook  # keyed, so a second ready() does not register it twice


def job_starting(ctx, params) -> None:
    for hook in _job_start.values():
        hook(ctx, params)


# approval -> {label: path}: what an app recorded for a request after its plan (a deploy's deployment row),
# linked on the approval page beside the plan's own links (those are hashed; these are not part of the plan).
_approval_links: dict[str, Callable] = {}


def on_approval_links(name: str, hook: Callable) -> None:
    _approval_links[name] = hook


def approval_links(approval) -> dict[str, str]:
    links: dict[str, str] = {}
    for hook in _approval_links.values():
        links.update(hook(approval))
    return links


# job -> (text, link) or None: how an app words the notice of a finished job in its own terms
# ("production/web deploy rolled back", linking the deployment rather than the job).
_job_notices: dict[str, Callable] = {}


def on_job_notice(name: str, hook: Callable) -> None:
    _job_notices[name] = hook


def job_notice(job, op) -> tuple[str, str]:
    """The notice of a finished job: an app's wording if one claims it, else "<target> <operation> <status>"."""
    for hook in _job_notices.values():
        notice = hook(job)
        if notice is not None:
            return notice
    action = op.name.split(".", 1)[1].replace("_", " ")
    return f"{job.target or op.app} {action} {job.status}".strip(), job.get_absolute_url()


# job -> None: an app records what it keeps about a job just queued, in the transaction that stores it
# (approvals: the run of the request it executes; infrastructure: the deployment it carries out).
_job_queued: dict[str, Callable] = {}


def on_job_queued(name: str, hook: Callable) -> None:
    _job_queued[name] = hook


def job_queued(job) -> None:
    for hook in _job_queued.values():
        hook(job)


# job -> None: an app settles what it keeps about a job that ended (finished, failed, cancelled, refused at
# its start checks, its worker lost), e.g. a deployment row whose job never started its rollout.
_job_ended: dict[str, Callable] = {}


def on_job_ended(name: str, hook: Callable) -> None:
    _job_ended[name] = hook


def job_ended(job) -> None:
    """Each app settles what it keeps, whatever another's hook does: the job's end is already recorded (or is being,
    in the caller's transaction), so one that fails is logged and does not keep the others from settling theirs."""
    for name, hook in _job_ended.items():
        try:
            hook(job)
        except Exception:
            log.exception("job %s ended: the %s hook failed; the other apps' hooks still ran", job.pk, name)


# (user, credential, why) -> how many: an app ends the waiting work `user` left behind through a `credential`
# (Actor.credential, opaque here) that was just revoked — core its queued jobs, approvals its pending requests —
# so that authorizing the same credential again does not revive it. Called inside the revoking operation.
# A revoked credential covers the references under it (`revoked_references`): accounts revoking an OAuth client
# ("oauth:<app>") ends the work of each of its authorizations ("oauth:<app>:<family>") too.
_credential_revoked: dict[str, Callable] = {}


def on_credential_revoked(name: str, hook: Callable) -> None:
    _credential_revoked[name] = hook


def revoked_references(credential: str) -> Q:
    """The stored references (a model's `credential` field) a revoked `credential` covers: itself, and the
    references under it ("<credential>:..."). Nothing for "" (a person's session is no credential)."""
    if not credential:
        return Q(pk__in=[])
    return Q(credential=credential) | Q(credential__startswith=f"{credential}:")


def credential_revoked(user, credential: str, why: str) -> dict[str, int]:
    """End the waiting work of `credential` for `user`: how many of each kind ({"jobs": 2, "approval_requests": 1})."""
    return {name: hook(user, credential, why) for name, hook in _credential_revoked.items()}


# The one-per-console services the apps below their owner call, each provided by the app that owns it
# from its ready(): who an actor is (accounts), how a call is audited (audit), which calls wait for
# approval (approvals), the S3 connections (storage). Looked up on each call, so a missing app is a
# clear error, not an import of an app above.
_provided: dict[str, object] = {}


def provide(service: str, provider: object) -> None:
    _provided[service] = provider


def provided(service: str):
    try:
        return _provided[service]
    except KeyError:
        raise ImproperlyConfigured(f"Nothing provides {service!r}: the app that owns it is not installed or not ready.") from None


def actors():
    """The actor type (apps.accounts.actors.Actor): `for_user(user, token=None)`, `system()`, and
    `for_credential(user, credential, scopes)`: the actor of work stored with an actor's `credential` and
    `scopes` (opaque to core), whose `refusal()` says why it may no longer act."""
    return provided("actors")


def record_audit(**fields):
    """Append one audit event (apps.audit: the writer's `record()`, then the event shown live); the event."""
    return provided("audit")(**fields)


@dataclass(frozen=True)
class ApprovalGate:
    """What the gateway asks of the approvals app for a call with an approval scope."""

    policy_for: Callable  # (operation name, scope) -> policy (`.requires_approval`)
    request: Callable  # (op, data, actor, channel, *, scope, policy, reason) -> the pending request
    break_glass: Callable  # same arguments -> the request that reviews a run made without approval


def approvals() -> ApprovalGate:
    return provided("approvals")


@dataclass(frozen=True)
class Buckets:
    """S3 connections by name, from apps.storage, for the apps below it (audit's off-machine anchors)."""

    connect: Callable  # connection name -> its client (`call`, `optional`, `open`, `objects`, `versions`), raising an OpsError
    write_args: Callable  # (client, *, classification, content_type) -> a PUT's arguments (the connection's encryption)
    missing: frozenset[str]  # the error codes of an object or bucket that is not there


def buckets() -> Buckets:
    return provided("buckets")
