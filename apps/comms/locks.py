"""Serialise work on one status message (a deployment's reports may be handled by
several worker threads at once): a transaction-scoped lock per key."""

from __future__ import annotations

import hashlib
from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def status_lock(key: str):
    with transaction.atomic():
        if connection.vendor == "postgresql":
            lock_id = int.from_bytes(hashlib.sha256(f"comms.status:{key}".encode()).digest()[:8], "big", signed=True)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_id])
        # SQLite: the IMMEDIATE transaction already holds the database's write lock.
        yield
