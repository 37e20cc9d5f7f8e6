"""Hooks the apps above approvals plug in from their AppConfig.ready(), called where a request's state changes:
approvals knows no app above it (a deploy request's deployment row is infrastructure's)."""

from __future__ import annotations

from collections.abc import Callable

# approval -> None: a request was just recorded (pending, or a break-glass run's review), in its transaction.
_recorded: dict[str, Callable] = {}

# approval -> None: a request ended without its job running: rejected, expired, withdrawn (its credential was
# revoked) or drifted (approved, then refused at its job's start because what would run changed).
_not_run: dict[str, Callable] = {}


def on_request_recorded(name: str, hook: Callable) -> None:
    _recorded[name] = hook  # keyed, so a second ready() does not register it twice


def request_recorded(approval) -> None:
    for hook in _recorded.values():
        hook(approval)


def on_request_not_run(name: str, hook: Callable) -> None:
    _not_run[name] = hook


def request_not_run(approval) -> None:
    for hook in _not_run.values():
        hook(approval)
