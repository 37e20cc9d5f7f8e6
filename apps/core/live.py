"""The one live-event publisher: rendered HTML fragments pushed to websocket
groups (`job.<id>`, `jobs`, `approvals`, `user.<id>`, ...). Browsers swap them in
with the htmx `ws` extension (out-of-band swaps by element id).

Topics are authorised by prefix: an app registers which permission a topic
needs with `register_topic()`; the consumer refuses the rest.

A publisher whose fragments each replace the whole previous state (a dashboard
refresh) stamps them with a sequence number (`seq`, increasing per topic, e.g.
the refresh slot). Publishers in several processes can race, so an older
fragment may reach Redis after a newer one: the consumer drops any stamped
fragment not newer than the last it sent, and the browser drops one not newer
than what its page shows (`data-seq`, static/js/console.js).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time

from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db import transaction
from django.template.loader import render_to_string

from .errors import PeerUnavailable
from .resilience import breaker_for, redis_call

log = logging.getLogger(__name__)
TOPIC_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,90}$")

# topic prefix -> (rule, snapshot). rule: a permission, or callable(actor, topic) -> bool.
# snapshot: optional callable(topic) -> html sent to a browser right after it
# subscribes, so nothing published between page render and subscription is missed.
_topics: dict[str, tuple[object, object]] = {}


def register_topic(prefix: str, rule, snapshot=None) -> None:
    _topics[prefix] = (rule, snapshot)


def _entry(topic: str):
    for prefix, entry in sorted(_topics.items(), key=lambda kv: -len(kv[0])):
        if topic == prefix or topic.startswith(prefix + "."):
            return entry
    return None


def may_subscribe(actor, topic: str) -> bool:
    entry = _entry(topic) if TOPIC_RE.match(topic) else None
    if entry is None:
        return False
    rule = entry[0]
    return rule(actor, topic) if callable(rule) else actor.has_perm(rule)


def snapshot(topic: str) -> str:
    entry = _entry(topic)
    return entry[1](topic) if entry and entry[1] else ""


def group_name(topic: str) -> str:
    return "live." + topic


class _PublisherLoop:
    """One event loop thread per process for publishing from sync code.

    async_to_sync would start a new loop (and the channel layer a new Redis
    connection) for every event; this keeps one loop and its connection pool.
    Re-created after a fork (Celery's prefork workers).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = None

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                self._loop = asyncio.new_event_loop()
                self._pid = os.getpid()
                threading.Thread(target=self._loop.run_forever, name="live-publisher", daemon=True).start()
            return self._loop


_publisher = _PublisherLoop()


def publish(topic: str, html: str, *, seq: int | None = None) -> None:
    """Send a fragment to every browser watching `topic`, in order, once the caller's transaction commits (at once
    outside one): what is rolled back — a call that failed after its first write — is never shown as if it had
    happened. Never fails the caller.

    `seq`: for fragments that replace the whole previous state, a number that grows
    with each new state of the topic (older ones are then dropped, see above)."""
    transaction.on_commit(lambda: _send(topic, html, seq))


def _send(topic: str, html: str, seq: int | None) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "live.html", "html": html}
    if seq is not None:
        message["seq"] = seq
    try:
        # In order, and bounded: a slow Redis must not stall the caller for long (nor at all once its breaker is open).
        def send():
            return asyncio.run_coroutine_threadsafe(layer.group_send(group_name(topic), message), _publisher.loop()).result(timeout=5)

        redis_call(send)
    except Exception:  # a live view is a convenience; the work it reports must go on
        log.warning("could not publish live event to %s", topic, exc_info=True)


def publish_template(topic: str, template: str, context: dict, *, wait: bool = True) -> None:
    """Render and publish. With wait=False the rendering and sending happen on the
    publisher thread, off the caller's path, and only while a browser watches the
    topic (for busy feeds where order does not matter, e.g. every gateway call)."""
    if wait:
        publish(topic, render_to_string(template, context))
        return
    if not watched(topic):
        return
    loop = _publisher.loop()
    loop.call_soon_threadsafe(lambda: loop.run_in_executor(None, publish_template, topic, template, context))


# How many browsers watch each topic, across web processes. A process that dies
# leaves its count too high, which only costs publishing to nobody.
def _watch_key(topic: str) -> str:
    return f"live:watchers:{topic}"


async def count_watcher(topic: str, delta: int) -> None:
    key = _watch_key(topic)
    _watched.pop(topic, None)
    await cache.aadd(key, 0, timeout=None)
    if await cache.aincr(key, delta) < 0:  # the key was flushed while watched
        await cache.aset(key, 0, timeout=None)


# Asked on every gateway call: each process reads the count at most once a second per topic
# (a browser that starts watching sees events from then on, after its snapshot).
WATCH_CHECK_SECONDS = 1.0
_watched: dict[str, tuple[float, bool]] = {}
clock = time.monotonic  # tests hold it still


def watched(topic: str) -> bool:
    now = clock()
    hit = _watched.get(topic)
    if hit is not None and now - hit[0] < WATCH_CHECK_SECONDS:
        return hit[1]
    if breaker_for("redis").fail_counter:  # Redis just failed this process: no second wait for a convenience
        return False
    try:
        answer = (redis_call(lambda: cache.get(_watch_key(topic))) or 0) > 0
    except PeerUnavailable:  # Redis down: nobody receives live events anyway
        answer = False
    _watched[topic] = (now, answer)
    return answer
