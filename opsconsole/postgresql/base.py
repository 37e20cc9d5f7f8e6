"""Django's PostgreSQL backend, failing fast while the database does not answer.

A page touches the database many times (session, user, context processors, the
error page's own lookups): with a hung server each would wait the connect or pool
timeout, so a request took minutes to fail. After a connect fails, this process
does not try again for DB_DOWN_SECONDS: every access meanwhile fails at once, and
the page answers 503 (apps.core.middleware) within one timeout.
"""

from __future__ import annotations

import threading
import time

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base

_lock = threading.Lock()
_retry_at = 0.0  # monotonic time before which no connect is tried


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        global _retry_at
        if time.monotonic() < _retry_at:
            raise psycopg.OperationalError("the database did not answer a moment ago (not tried again yet)")
        try:
            return super().get_new_connection(conn_params)
        except psycopg.OperationalError:
            with _lock:
                _retry_at = time.monotonic() + settings.DB_DOWN_SECONDS
            raise
