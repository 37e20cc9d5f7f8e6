"""The gateway's rate limit in one Redis round trip.

Same semantics as django-ratelimit (which still guards the views: login, token
refusals): a fixed window per key with django-ratelimit's per-key jitter, the
same cache keys, N calls per period. django-ratelimit's `get_usage` costs three
commands (SET NX, EXISTS, INCRBY) on every call; one Lua script does the
increment and sets the expiry on the window's first hit.
"""

from __future__ import annotations

import re
import time
import zlib
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings
from django.core.cache import caches
from django_ratelimit.core import EXPIRATION_FUDGE, _make_cache_key, _split_rate

from .idle import Idle

_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


_scripts: dict[tuple[str, str], tuple[redis.commands.core.Script, Idle]] = {}


def _script(alias: str) -> tuple[redis.commands.core.Script, Idle]:
    """The script, bound to a client of the cache's own server with its options (timeouts, retry), as
    Django's RedisCache builds its pool: the first server of LOCATION takes writes; and this process's
    idle connections to that server. One per process; sent by its digest (EVALSHA, loaded again if the
    server lost it). Django's cache has no public raw client."""
    config = settings.CACHES[alias]
    held = (alias, config["LOCATION"])
    if held not in _scripts:
        server = re.split("[;,]", config["LOCATION"])[0]
        _scripts[held] = (
            redis.Redis.from_url(server, **config.get("OPTIONS", {})).register_script(_HIT),
            Idle(lambda conn: conn.disconnect()),
        )
    return _scripts[held]


def _evalsha(alias: str, key: str, expire: int) -> int:
    """Run the script on a connection of this process's own (redis-py's, with the cache's options: timeouts,
    auth, TLS), taken from its idle ones (core/idle.py: not one per thread, which under ASGI is one per page).
    A call through the client (pool checkout and release, its retry and metrics wrappers) cost as much CPU
    again as the round trip itself, ~65 µs of a gateway call. As the client's options say, a connection broken
    by a Redis restart is replaced at once (one retry, never on a timeout); a connection that failed or was
    interrupted is closed (no half-read answer is left for the next call) and reconnects on its next use."""
    script, idle = _script(alias)
    conn = idle.take()
    if conn is None:
        pool = script.registered_client.connection_pool
        conn = pool.connection_class(**pool.connection_kwargs)
    try:
        for retry in (False, True):
            try:
                return _send(conn, script.sha, key, expire)
            except redis.exceptions.ConnectionError:
                conn.disconnect()
                if retry:
                    raise
            except BaseException:
                conn.disconnect()
                raise
        raise AssertionError("unreachable")
    finally:
        idle.give(conn)


def _send(conn, sha: str, key: str, expire: int) -> int:
    try:
        conn.send_command("EVALSHA", sha, 1, key, expire)
        return conn.read_response()
    except redis.exceptions.NoScriptError:  # the server lost its scripts (a restart, SCRIPT FLUSH): send it whole
        conn.send_command("EVAL", _HIT, 1, key, expire)
        return conn.read_response()


_rate = lru_cache(maxsize=64)(_split_rate)  # "100/m" -> (100, 60), parsed once per rate


# The time source (tests hold it still so that a window cannot end between two calls).
clock = time.time


def _window(value: str, period: int) -> int:
    """The end of the current window, as django-ratelimit computes it (a per-key jitter spreads the ends)."""
    now = int(clock())
    if period == 1:
        return now
    end = now - (now % period) + (zlib.crc32(value.encode()) % period)
    return end + period if end < now else end


@dataclass(frozen=True)
class Usage:
    count: int
    limit: int
    time_left: int

    @property
    def should_limit(self) -> bool:
        return self.count > self.limit


@lru_cache(maxsize=4096)
def _key(alias: str, group: str, window: int, rate: str, value: str) -> str:
    """A window's cache key (hashed, prefixed, validated): the same for every call of a caller in one window."""
    return caches[alias].make_and_validate_key(_make_cache_key(group, window, rate, value, None))


def hit(group: str, value: str, rate: str) -> Usage:
    """Count one call of `value` in `group` against `rate` ("100/m") and say whether it is over."""
    limit, period = _rate(rate)
    window = _window(value, period)
    alias = settings.RATELIMIT_USE_CACHE
    count = int(_evalsha(alias, _key(alias, group, window, rate, value), period + EXPIRATION_FUDGE))
    return Usage(count=count, limit=limit, time_left=window - int(clock()))
