"""Hooks the apps above core plug in from their AppConfig.ready(): core knows no app above it."""

from __future__ import annotations

from collections.abc import Callable

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
