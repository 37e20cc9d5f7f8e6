"""The one outbound guard for connections to addresses people configure (comms targets, audit
SIEM sinks). The comms app registers its SSRF guard here — the allow-listed networks are
managed there — so apps below it use the same rules without importing it."""

from __future__ import annotations

from collections.abc import Callable

_guard: list[Callable] = []


def register_guard(check: Callable) -> None:
    """`check(url)` -> an object with .host, .address (the checked IP) and .pinned_url, or raises an OpsError."""
    _guard[:] = [check]


def check_url(url: str):
    if not _guard:  # fail closed: without the guard nothing is allowed out
        raise RuntimeError("No outbound guard is registered (the comms app registers it).")
    return _guard[0](url)
