"""Probes of the console's own dependencies.

`probe()` runs the probes side by side, each on a pool thread, and waits at
most HEALTH_PROBE_SECONDS for all of them: a dependency that hangs (a stopped
Redis, a database that does not answer) is reported as such instead of holding
the health page. A probe still running past the deadline finishes on its own,
bounded by its client's timeouts; the pool is small, so hung probes cannot pile
up threads either (a probe that cannot even start in time is reported the same).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

import redis
from django.conf import settings
from django.db import connection

log = logging.getLogger(__name__)
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="health-probe")

# Checks that apps contribute (advisory data freshness, ...): each returns (name, "ok" | "warning", detail) rows.
_app_checks: list[Callable[[], list[tuple[str, str, str]]]] = []


def register_check(check: Callable[[], list[tuple[str, str, str]]]) -> None:
    if check not in _app_checks:
        _app_checks.append(check)


def app_checks() -> list[tuple[str, str, str]]:
    rows = []
    for check in _app_checks:
        try:
            rows.extend(check())
        except Exception as exc:  # one app's probe must not take the health page down
            log.warning("health check %s failed: %s", getattr(check, "__qualname__", check), exc)
            rows.append((getattr(check, "__module__", "check"), "warning", f"the check failed: {type(exc).__name__}"))
    return rows


def database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:
        log.warning("database probe failed: %s", exc)
        return f"down: {type(exc).__name__}"
    finally:
        connection.close()  # runs on a pool thread: its connection must not outlive the probe


def broker_status() -> tuple[str, int | None]:
    """Broker (Redis) reachability and the number of jobs waiting in the default queue."""
    key = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "") + settings.CELERY_TASK_DEFAULT_QUEUE
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=settings.REDIS_SOCKET_TIMEOUT, socket_connect_timeout=settings.REDIS_CONNECT_TIMEOUT
        )
        with client:
            return "ok", int(client.llen(key))
    except redis.RedisError as exc:
        log.warning("broker probe failed: %s", exc)
        return f"down: {type(exc).__name__}", None


def worker_status(timeout: float = 0.5) -> list[str]:
    from opsconsole.celery import app

    try:
        replies = app.control.ping(timeout=timeout) or []
    except Exception as exc:
        log.warning("worker ping failed: %s", exc)
        return []
    return sorted(name for reply in replies for name in reply)


def probe(include_workers: bool = True) -> dict:
    """{"database": str, "broker": str, "queue_depth": int | None, "workers": list} within the deadline."""
    deadline = settings.HEALTH_PROBE_SECONDS
    late = f"down: no answer within {deadline:g} s"
    futures = {"database": _pool.submit(database_status), "broker": _pool.submit(broker_status)}
    if include_workers:
        futures["workers"] = _pool.submit(worker_status)
    wait(futures.values(), timeout=deadline)

    def result(name, unanswered):
        future = futures.get(name)
        if future is None:
            return unanswered
        if future.done():
            return future.result()
        future.cancel()  # not started yet: it never will
        log.warning("health probe %s gave no answer within %s s", name, deadline)
        return unanswered

    broker, depth = result("broker", (late, None))
    return {"database": result("database", late), "broker": broker, "queue_depth": depth, "workers": result("workers", [])}
