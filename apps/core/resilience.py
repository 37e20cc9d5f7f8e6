"""Resilience for connectors: one circuit breaker per connector instance
(pybreaker) and bounded retries with backoff for idempotent reads (tenacity).

    breaker = breaker_for("prometheus:main")
    result = call_through(breaker, lambda: client.get(...), retry=True, errors=(httpx.TransportError,))

A breaker opens after BREAKER_FAIL_MAX consecutive failures and lets one trial
call through after BREAKER_RESET_SECONDS (half-open). Its state is shared by
the threads of one process; each process learns the peer's state on its own.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import TypeVar

import pybreaker
import redis
import tenacity
from django.conf import settings

from .errors import OpsError, PeerUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

_breakers: dict[str, pybreaker.CircuitBreaker] = {}
_lock = threading.Lock()


class _LogListener(pybreaker.CircuitBreakerListener):
    def state_change(self, cb, old_state, new_state):
        log.warning("circuit breaker %s: %s -> %s", cb.name, old_state.name, new_state.name)


class _Breaker(pybreaker.CircuitBreaker):
    """pybreaker holds the breaker's lock over the whole call (danielfm/pybreaker#55): every call through
    one breaker would wait for the one before it — all of a process's Redis calls, a dashboard's panels,
    an upload's parts. Closed, calls run side by side (the lock guards the state only); open or half-open,
    the lock is held over the call as pybreaker does, so that a single trial call goes through."""

    def call(self, func, *args, **kwargs):
        with self._lock:
            state = self.state
            if state.name != pybreaker.STATE_CLOSED:
                return state.call(func, *args, **kwargs)
        return state.call(func, *args, **kwargs)


def breaker_for(name: str) -> pybreaker.CircuitBreaker:
    with _lock:
        if name not in _breakers:
            _breakers[name] = _Breaker(
                fail_max=settings.BREAKER_FAIL_MAX,
                reset_timeout=settings.BREAKER_RESET_SECONDS,
                name=name,
                # A domain error (bad query, missing object) means the peer answered: not a failure.
                exclude=[OpsError],
                # The call that trips the breaker reports the peer's own error.
                throw_new_error_on_trip=False,
                listeners=[_LogListener()],
            )
        return _breakers[name]


def breaker_states() -> dict[str, dict]:
    with _lock:
        return {name: {"state": cb.current_state, "failures": cb.fail_counter} for name, cb in sorted(_breakers.items())}


def forget_breaker(name: str) -> None:
    """Drop a connector's breaker (its settings changed or it was deleted)."""
    with _lock:
        _breakers.pop(name, None)


def call_through(
    breaker: pybreaker.CircuitBreaker,
    fn: Callable[[], T],
    *,
    errors: tuple[type[BaseException], ...],
    timeouts: tuple[type[BaseException], ...] = (),
    retry: bool = False,
    attempts: int = 3,
    describe: str = "",
) -> T:
    """Run `fn` through the breaker; `errors` are the peer failures that count.

    With `retry` (idempotent reads only) a failure is retried with exponential
    backoff before it counts against the breaker — except `timeouts` (the
    connector's connect/read timeout errors): a peer that hangs would only make
    every retry wait as long again, so a timeout counts at once. Any of
    `errors`, or an open breaker, becomes PeerUnavailable with a message a
    person can act on.
    """
    label = describe or breaker.name
    attempt = fn
    if retry:
        # A Retrying called with fn, not tenacity.retry(...)(fn): the decorator costs twice as much
        # per call (~50 µs), and a dashboard makes a dozen calls per render.
        policy = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(errors) & tenacity.retry_if_not_exception_type(timeouts),
            stop=tenacity.stop_after_attempt(attempts),
            wait=tenacity.wait_exponential(multiplier=0.2, max=2),
            reraise=True,
        )
        attempt = functools.partial(policy, fn)
    try:
        return breaker.call(attempt)
    except pybreaker.CircuitBreakerError:
        raise PeerUnavailable(
            f"{label} is unavailable: its circuit breaker is open after repeated failures; "
            f"the console will try again within {settings.BREAKER_RESET_SECONDS} s."
        ) from None
    except timeouts as exc:
        raise PeerUnavailable(f"{label} did not answer in time ({type(exc).__name__}): {exc}") from exc
    except errors as exc:
        raise PeerUnavailable(f"{label} did not answer: {exc}") from exc


def redis_call(fn: Callable[[], T]) -> T:
    """A call to the console's own Redis from a request (rate limits, live watchers).

    The client's short timeouts (REDIS_SOCKET_TIMEOUT) bound each call; the breaker
    makes a Redis that hangs cost a page one timeout until it opens, then nothing:
    pages answer at once with PeerUnavailable (503) until Redis answers a trial call.
    """
    describe = "The console's Redis (rate limits, live updates, job queue)"
    return call_through(breaker_for("redis"), fn, errors=(redis.RedisError,), describe=describe)
