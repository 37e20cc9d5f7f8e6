"""The buckets each connection listed the last time `storage.buckets` ran: what the generic
forms suggest for a bucket field, with no call to the peer per page render."""

from __future__ import annotations

import logging

from django.core.cache import cache
from redis import RedisError

from .models import Connection

logger = logging.getLogger(__name__)
LIMIT = 500  # per connection: a suggestion list, not an inventory


def _key(connection: str) -> str:
    return f"storage:bucket-names:{connection}"


def remember(connection: str, names: list[str]) -> None:
    cache.set(_key(connection), sorted(names)[:LIMIT], timeout=None)


def forget(connection: str) -> None:
    cache.delete(_key(connection))


def known() -> list[tuple[str, str]]:
    """(bucket, connection) for every bucket last seen on a connection that still exists."""
    connections = list(Connection.objects.values_list("name", flat=True))
    try:
        found = cache.get_many([_key(c) for c in connections])
    except RedisError as exc:  # suggestions only: the form still takes a typed name
        logger.warning("bucket suggestions unavailable: %s", exc)
        return []
    return [(bucket, f"on {c}") for c in connections for bucket in found.get(_key(c), [])]
