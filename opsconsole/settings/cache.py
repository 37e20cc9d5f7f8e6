"""Redis: the cache (and rate limits), the channel layer, and the timeouts of every Redis client.
Celery's broker is the same Redis (jobs.py)."""

from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from .environment import DATA_DIR, env

# Default: the embedded Redis that bin/console starts on a unix socket in DATA_DIR.
REDIS_URL = env("REDIS_URL", f"unix://{DATA_DIR / 'redis.sock'}")
REDIS_PREFIX = env("REDIS_PREFIX", "opsconsole")

# Short timeouts on every Redis client (redis-py's default is 5 s): a Redis that hangs
# must make a page fail fast with a clear message, not hold it (see docs/faults.md).
REDIS_SOCKET_TIMEOUT = float(env("REDIS_SOCKET_TIMEOUT", "2"))
REDIS_CONNECT_TIMEOUT = float(env("REDIS_CONNECT_TIMEOUT", "1"))
CACHES = {
    "default": {
        "BACKEND": "apps.core.idle.SharedRedisCache",  # one pool per process, not per request (core/idle.py)
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_PREFIX,
        "OPTIONS": {
            "socket_timeout": REDIS_SOCKET_TIMEOUT,
            "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
            # A pooled connection broken by a Redis restart is replaced at once (one retry, never on a timeout).
            "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        },
    }
}
CHANNEL_LAYERS = {
    "default": {
        # channels_redis, with its socket timeout kept longer than its blocking read (apps/core/channel_layer.py).
        "BACKEND": "apps.core.channel_layer.RedisChannelLayer",
        "CONFIG": {
            "hosts": [REDIS_URL],
            "prefix": f"{REDIS_PREFIX}:asgi",
            "capacity": 1000,
            "expiry": 30,
            "block_seconds": float(env("CHANNEL_LAYER_BLOCK_SECONDS", "2")),
            "socket_timeout": REDIS_SOCKET_TIMEOUT,
            "connect_timeout": REDIS_CONNECT_TIMEOUT,
        },
    }
}
