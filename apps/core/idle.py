"""Connections a process keeps between calls, for whichever thread calls next: Idle (the rate
limit's and the audit appender's own connections) and SharedRedisCache (Django's cache).

Not one per thread: under ASGI each request's sync code runs on a thread of its own (Django's
handler opens an asgiref ThreadSensitiveContext per request, and with it a new one-thread
executor), so a connection kept in a `threading.local` was opened, handshaken and dropped on
every page (a Redis connect and its handshake: ~0.9 ms of the web process's CPU per page).
A caller takes an idle connection (or opens one), uses it alone, and gives it back only when
nothing is left half-read on it; list.pop and list.append are atomic, so no lock is taken. A
forked child never uses its parent's connections: it opens its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from functools import cached_property
from typing import Generic, TypeVar

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

T = TypeVar("T")


class Idle(Generic[T]):
    def __init__(self, close: Callable[[T], object], keep: int = 32):
        self._close = close
        self._keep = keep  # more than the threads that call at once; extra connections are closed
        self._pid = os.getpid()
        self._idle: list[T] = []

    def take(self) -> T | None:
        """An idle connection of this process, or None: open one, and give it back after use."""
        if self._pid != os.getpid():  # forked: the parent's sockets are the parent's (left open, never used)
            self._pid, self._idle = os.getpid(), []
        try:
            return self._idle.pop()
        except IndexError:
            return None

    def give(self, conn: T) -> None:
        """Keep `conn` for the next caller (it must hold no half-read answer), or close it when enough are kept."""
        if self._pid == os.getpid() and len(self._idle) < self._keep:
            self._idle.append(conn)
        else:
            self._close(conn)

    def close_all(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            self._close(conn)


_clients: dict[tuple, tuple[dict, RedisCacheClient]] = {}
_clients_lock = threading.Lock()


class SharedRedisCache(RedisCache):
    """Django's Redis cache with one client, and so one pool of connections, per process and settings.
    Django makes a cache object per async context (CacheHandler is an asgiref Local): under ASGI each
    request gets its own, and with it a new client whose pool starts empty, so every page that touched
    the cache opened a connection of its own (Django PR #18459 reports the same in sync code)."""

    @cached_property
    def _cache(self) -> RedisCacheClient:
        # Keyed by the OPTIONS dict itself (held in the value, its id is never reused): settings that
        # override the cache get a client of their own.
        key = (tuple(self._servers), id(self._options))
        with _clients_lock:
            if key not in _clients:
                _clients[key] = (self._options, RedisCacheClient(self._servers, **self._options))
            return _clients[key][1]
