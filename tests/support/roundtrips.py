"""Count the round trips a piece of code makes to the database and to Redis, as the
servers see them: on PostgreSQL from libpq's protocol trace (every simple Query or
extended-protocol Sync the client sends waits for an answer: BEGIN and COMMIT count),
on SQLite the statements run (no server); on Redis every packed send (a pipeline or a
script is one). In libpq's pipeline mode a Flush the client waits on counts too."""

from __future__ import annotations

import contextlib
import tempfile

import redis.connection
from django.db import connection


class RoundTrips:
    sql = 0
    redis = 0

    @property
    def total(self) -> int:
        return self.sql + self.redis


@contextlib.contextmanager
def counting():
    counts = RoundTrips()
    original = redis.connection.AbstractConnection.send_packed_command

    def send(self, command, check_health=True):
        counts.redis += 1
        return original(self, command, check_health)

    redis.connection.AbstractConnection.send_packed_command = send
    try:
        with _sql(counts):
            yield counts
    finally:
        redis.connection.AbstractConnection.send_packed_command = original


@contextlib.contextmanager
def _sql(counts: RoundTrips):
    connection.ensure_connection()
    if connection.vendor != "postgresql":

        def count(execute, sql, params, many, context):
            counts.sql += 1
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            yield
        return
    from psycopg import pq

    pgconn = connection.connection.pgconn
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            yield
        finally:
            pgconn.untrace()
            trace.seek(0)
            counts.sql = _waits([line.split("\t")[2].strip() for line in trace if line.startswith("F\t")])


def _waits(sent: list[str]) -> int:
    """Messages after which the client waits: a simple Query, a Sync, and in pipeline mode a
    Flush (psycopg sends one when it needs a result before the Sync; one right after a Sync
    waits for nothing more)."""
    return sum(1 for i, kind in enumerate(sent) if kind in ("Query", "Sync") or (kind == "Flush" and (i == 0 or sent[i - 1] != "Sync")))
