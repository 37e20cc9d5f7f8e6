"""The channel layer: channels_redis with its blocking read and its Redis socket
timeout set together.

channels_redis waits for messages with BZPOPMIN blocking `brpop_timeout` (5 s)
on the server. redis-py 8 gives every connection a 5 s socket timeout by
default, so the client gave up at the very moment the server answered an idle
wait: about one idle wait in two ended in `redis.exceptions.TimeoutError`,
which kills the process's receive loop and closes every websocket of the
process (seen every 5-21 s on idle live pages). Here the socket timeout is
always the block time plus a margin, so an idle wait ends on the server's
answer, and a Redis that hangs still surfaces within `block + margin` seconds.

One late answer is read again once (on a new connection) before the loop gives up: a process
starved for a moment on a busy host (seen at load 8) must not close every websocket it serves;
a Redis that hangs still surfaces, within twice `block + margin` seconds.
"""

from __future__ import annotations

import logging

import redis
from channels_redis.core import RedisChannelLayer as _RedisChannelLayer
from channels_redis.utils import decode_hosts
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

log = logging.getLogger(__name__)


class RedisChannelLayer(_RedisChannelLayer):
    def __init__(
        self,
        hosts=None,
        *,
        block_seconds: float = 2,
        socket_timeout: float = 1,
        connect_timeout: float = 1,
        health_check_interval: float = 15,
        **kwargs,
    ):
        options = {
            # A read that outlives the server-side block means Redis itself is stuck.
            "socket_timeout": block_seconds + socket_timeout,
            "socket_connect_timeout": connect_timeout,
            # PING a connection idle this long before use: one left broken by a Redis restart is replaced, not used.
            "health_check_interval": health_check_interval,
            # A connection broken by a Redis restart fails its next command: retry that once on a new
            # connection. Never a timeout: a Redis that hangs would only make the caller wait twice.
            "retry": Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        }
        super().__init__(hosts=[{**host, **options} for host in decode_hosts(hosts)], **kwargs)
        self.brpop_timeout = block_seconds

    async def _brpop_with_clean(self, index, channel, timeout):
        try:
            return await super()._brpop_with_clean(index, channel, timeout)
        except redis.TimeoutError:  # redis-py dropped that connection: the next read takes a new one
            log.warning("channel layer: Redis answered a blocking read late; reading again once")
            return await super()._brpop_with_clean(index, channel, timeout)
