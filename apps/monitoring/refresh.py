"""Shared live refresh of dashboards: one evaluation per dashboard per interval,
whatever the number of viewers or web processes.

Each web process that has viewers of a dashboard (over a given range) runs one
asyncio loop for it, woken on the dashboard's refresh ticks (wall-clock slots of
`refresh_seconds`). At each tick the loops of all processes race for a lease in
Redis (`cache.add`, atomic SET NX with expiry) named after the slot; the one that
wins evaluates the panels once (through the gateway, as the system actor, so the
refresh is audited and the data cached for page loads of the same slot), renders
the fragment once and sends it with one `group_send` to `dashboard.<id>.<range>`,
which reaches every viewer in every process. The losers do nothing. A process
that dies mid-refresh costs one tick; the next slot's lease is a new key.

Chosen over a Celery-beat task because the loop runs only while someone watches,
ticks at sub-second precision on the slot boundary, and needs no presence table.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.db import close_old_connections
from django.template.loader import render_to_string

from apps.accounts.actors import Actor
from apps.core import gateway
from apps.core.errors import OpsError
from apps.core.live import publish
from apps.core.metrics import record_breaker_states

from .metrics import DASHBOARD_REFRESHES, DASHBOARD_VIEWERS
from .models import Dashboard
from .panels import panel_views

log = logging.getLogger(__name__)
TOPIC = re.compile(r"^dashboard\.(\d+)\.(" + "|".join(Dashboard.RANGES) + r")$")


def topic_for(dashboard_pk: int, range_: str) -> str:
    return f"dashboard.{dashboard_pk}.{range_}"


def parse_topic(topic: str) -> tuple[int, str] | None:
    match = TOPIC.match(topic)
    return (int(match.group(1)), match.group(2)) if match else None


@dataclass
class _Loop:
    viewers: int = 0
    task: asyncio.Task | None = None


_loops: dict[str, _Loop] = {}  # topic -> this process's loop


async def watch(topic: str) -> None:
    """A viewer joined in this process: make sure the topic's loop runs."""
    pk, range_ = parse_topic(topic)
    loop = _loops.setdefault(topic, _Loop())
    loop.viewers += 1
    DASHBOARD_VIEWERS.labels(str(pk)).inc()
    if loop.task is None or loop.task.done():
        loop.task = asyncio.create_task(_run(topic, pk, range_), name=f"refresh {topic}")


async def unwatch(topic: str) -> None:
    loop = _loops.get(topic)
    if loop is None:
        return
    loop.viewers -= 1
    DASHBOARD_VIEWERS.labels(str(parse_topic(topic)[0])).dec()
    if loop.viewers <= 0:
        _loops.pop(topic, None)
        if loop.task is not None:
            loop.task.cancel()


def _interval(pk: int) -> int | None:
    try:
        return Dashboard.objects.filter(pk=pk).values_list("refresh_seconds", flat=True).first()
    finally:
        close_old_connections()  # this runs on a pool thread, outside any request


async def _run(topic: str, pk: int, range_: str) -> None:
    while True:
        interval = await sync_to_async(_interval, thread_sensitive=False)(pk)
        if interval is None:
            return  # the dashboard was deleted
        now = time.time()
        # Wake just after the next slot boundary, the same moment in every process.
        await asyncio.sleep((int(now // interval) + 1) * interval - now + 0.02)
        slot = int(time.time() // interval)
        try:
            if await sync_to_async(claim, thread_sensitive=False)(topic, slot, interval):
                await sync_to_async(refresh_once, thread_sensitive=False)(topic, pk, range_, slot)
        except Exception:  # a failed tick must not end the loop; the next tick tries again
            log.exception("dashboard refresh %s failed", topic)


def claim(topic: str, slot: int, interval: int) -> bool:
    """True for exactly one caller per topic and slot, across all processes."""
    return cache.add(f"monitoring:refresh:{topic}:{slot}", 1, timeout=max(2, interval * 2))


def refresh_once(topic: str, pk: int, range_: str, slot: int) -> None:
    """Evaluate the dashboard (cached per slot), render it once and push it to every viewer,
    stamped with its slot: a refresh that finishes after a later one is dropped, not shown."""
    try:
        board = Dashboard.objects.filter(pk=pk).first()
        if board is None:
            return
        context = {"board": board, "range": range_, "seq": slot}
        try:
            data = gateway.invoke("monitoring.dashboard", Actor.system(), {"dashboard": board.slug, "range": range_}, "system").result
            # Late under load, the data may be for the next slot already: the fragment says what it shows.
            context.update(data=data, panels=panel_views(data), seq=data.slot or slot)
        except OpsError as exc:
            context["problem"] = exc.message
        publish(topic, render_to_string("monitoring/_dashboard_live.html", context), seq=context["seq"])
        DASHBOARD_REFRESHES.labels(str(pk)).inc()
        record_breaker_states()
    finally:
        close_old_connections()
