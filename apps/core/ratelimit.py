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

_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


_scripts: dict[tuple[str, str], redis.commands.core.Script] = {}


def _script(alias: str):
    """The script, bound to a client of the cache's own server with its options (timeouts, retry), as
    Django's RedisCache builds its pool: the first server of LOCATION takes writes. One per process
    (redis-py's pool is thread-safe and starts afresh after a fork); sent by its digest (EVALSHA,
    loaded again by redis-py if the server lost it). Django's cache has no public raw client."""
    config = settings.CACHES[alias]
    held = (alias, config["LOCATION"])
    if held not in _scripts:
        server = re.split("[;,]", config["LOCATION"])[0]
        _scripts[held] = redis.Redis.from_url(server, **config.get("OPTIONS", {})).register_script(_HIT)
    return _scripts[held]


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
    count = int(_script(alias)(keys=[_key(alias, group, window, rate, value)], args=[period + EXPIRATION_FUDGE]))
    return Usage(count=count, limit=limit, time_left=window - int(clock()))
