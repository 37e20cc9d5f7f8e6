"""Probes of the console's own dependencies."""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection

log = logging.getLogger(__name__)
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


def broker_status() -> tuple[str, int | None]:
    """Broker reachability and the number of jobs waiting in the default queue."""
    key = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "") + settings.CELERY_TASK_DEFAULT_QUEUE
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
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
