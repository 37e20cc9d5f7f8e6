"""Django's SQLite backend for web processes: connections kept between requests.

Under ASGI each request's sync code runs on a thread of its own, and Django's connections are
per thread, so every page opened the database file anew: the connect, Django's functions, the
PRAGMAs, and SQLite reading the schema again for its first statement (~1.3 ms of a page's CPU,
ten times the query it came for). As psycopg's pool does for PostgreSQL (settings.DB_POOL, which
asgi.py sets), a connection Django closes at the end of a request is kept for the next one
(apps/core/idle.py), rolled back first if a transaction was left open.
"""

from __future__ import annotations

from django.db.backends.sqlite3 import base

from apps.core.idle import Idle

_idle: dict[str, Idle] = {}  # per database file


def _kept(name: str) -> Idle:
    if name not in _idle:  # two threads at once may each make one: the lost one's connections are collected
        _idle[name] = Idle(lambda conn: conn.close())
    return _idle[name]


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        return _kept(self.settings_dict["NAME"]).take() or super().get_new_connection(conn_params)

    def _close(self):
        conn = self.connection
        if self.in_atomic_block:  # closed inside atomic(): Django keeps it marked closed, so it is closed
            conn.close()
            return
        try:
            if conn.in_transaction:  # an error mid-way: nothing of it may reach the next request
                conn.rollback()
        except base.Database.Error:
            conn.close()
            return
        _kept(self.settings_dict["NAME"]).give(conn)
