"""Waiting on a condition in tests: poll with a generous deadline (machines may be loaded), never a bare sleep."""

from __future__ import annotations

import time


def wait_for(condition, timeout: float = 120, what: str = "the condition", *, interval: float = 0.1):
    """Poll until `condition()` returns something truthy and return it; fail the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} did not happen within {timeout} s")
