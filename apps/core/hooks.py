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
