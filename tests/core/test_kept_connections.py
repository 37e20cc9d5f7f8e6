"""Web processes keep their connections between requests: PostgreSQL's in psycopg's pool (asgi.py turns it
on for every web process), SQLite's (opsconsole/sqlite) and Redis' (the cache's pool, the rate limit's own)
for the process (core/idle.py).
Under ASGI each request's sync code runs on a thread of its own, so what is kept per thread is not kept:
seen through uvicorn, as deployed, not through the test client, and from the servers' side
(pg_stat_activity: the backends of the web process, by its application name; a Redis of the test's own:
the connections it accepted)."""

import sqlite3
import threading

import httpx
import pytest
import redis
from django.db import connection
from django.test import Client
from django.urls import reverse

from tests.faults.redis_peer import RedisServer
from tests.support import processes

pytestmark = pytest.mark.django_db(transaction=True)


def backends_of(proc) -> set[tuple[int, object]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid, backend_start FROM pg_stat_activity WHERE application_name = %s", [proc.pg_app])
        return set(cursor.fetchall())


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a pool of PostgreSQL connections")
def test_requests_through_uvicorn_reuse_the_same_database_connections(make_user):
    user = make_user("viewer")
    browser = Client()
    browser.force_login(user)
    proc, url = processes.start_console()
    try:
        with httpx.Client(base_url=url, cookies={"sessionid": browser.cookies["sessionid"].value}) as web:
            assert web.get("/").status_code == 200
            before = backends_of(proc)
            for _ in range(20):
                assert web.get("/").status_code == 200
            after = backends_of(proc)
    finally:
        proc.stop()
    assert before and before <= after  # the backends that served the first page served the next 20 (none was closed)


def test_requests_through_uvicorn_open_no_redis_connection_each(make_user):
    """A page is a gateway call: its rate limit (one Redis script) and, at most once a second, the cache (does
    anyone watch the audit feed); a refused OAuth token request is counted in the cache (django-ratelimit's
    get_usage, the failure marker). 20 of each on the connections the first ones opened."""
    user = make_user("viewer")
    browser = Client()
    browser.force_login(user)
    server = RedisServer()
    proc, url = processes.start_console(REDIS_URL=server.url)
    try:
        accepted = lambda: redis.Redis.from_url(server.url).info("stats")["total_connections_received"]  # noqa: E731
        with httpx.Client(base_url=url, cookies={"sessionid": browser.cookies["sessionid"].value}) as web:
            page, token = reverse("security:findings"), reverse("oauth2_provider:token")
            refused = {"grant_type": "authorization_code", "client_id": "no-such-client", "code": "x", "redirect_uri": "http://127.0.0.1/"}
            assert web.get(page).status_code == 200 and web.post(token, data=refused).status_code == 401
            before = accepted()
            for _ in range(20):
                assert web.get(page).status_code == 200
                assert web.post(token, data=refused).status_code in (401, 429)
            opened = accepted() - before - 1  # the count's own connection
    finally:
        proc.stop()
        server.shutdown()
    assert opened == 0, f"{opened} Redis connections opened for 20 pages and 20 token requests"


def test_sqlite_connections_serve_the_next_request_on_another_thread(tmp_path):
    """The SQLite backend of web processes: requests, each on a thread of its own as under ASGI and each closing
    its connection at its end as Django does, run on the connection the first one opened; a transaction one
    left open is rolled back before the next request gets the connection (nothing of it seen, no lock held)."""
    from django.db.utils import ConnectionHandler

    path = str(tmp_path / "web.sqlite3")
    handler = ConnectionHandler({"default": {"ENGINE": "opsconsole.sqlite", "NAME": path}})

    def request(work):
        done = []

        def run():
            db = handler["default"]  # this thread's, as Django's connections are
            try:
                with db.cursor() as cursor:
                    done.append(work(db, cursor))
            finally:
                db.close()

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(timeout=60)
        return done[0]

    request(lambda db, cursor: cursor.execute("CREATE TABLE t (x INTEGER)"))
    used = [request(lambda db, cursor: db.connection) for _ in range(5)]
    assert all(conn is used[0] for conn in used)

    def fail_mid_way(db, cursor):
        cursor.execute("BEGIN IMMEDIATE")
        cursor.execute("INSERT INTO t VALUES (1)")
        return db.connection

    assert request(fail_mid_way) is used[0]
    assert request(lambda db, cursor: cursor.execute("SELECT count(*) FROM t").fetchone()[0]) == 0
    other = sqlite3.connect(path, timeout=0)  # another process's writer: not locked out
    with other:
        other.execute("INSERT INTO t VALUES (2)")
    other.close()
    assert request(lambda db, cursor: cursor.execute("SELECT x FROM t").fetchall()) == [(2,)]
