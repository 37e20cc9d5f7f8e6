"""Web processes keep their PostgreSQL connections between requests (psycopg's pool; asgi.py turns it on
for every web process): seen through uvicorn, as deployed, not through the test client, and from
PostgreSQL's side (pg_stat_activity: the backends of the web process, by its application name)."""

import httpx
import pytest
from django.db import connection
from django.test import Client

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
