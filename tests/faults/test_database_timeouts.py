"""A web process's SQL statement is cancelled by PostgreSQL after
DB_STATEMENT_TIMEOUT_MS (opsconsole/asgi.py sets a default for web processes
only); a worker or command has no such limit. Real PostgreSQL, in subprocesses
loading the settings as each kind of process does. And a database that hangs
(a server that accepts and never answers) is reported by /healthz in time."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import psycopg
import pytest
from django.db import connection

from tests.support import peers, processes
from tests.support.processes import ROOT, start_console

from .test_hung_peers import HungPeer

SLEEP = """
import django, os, sys
{setup}
from django.db import connection
try:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(1.5)")
    print("finished")
except Exception as exc:
    print(type(exc).__name__, exc)
"""


def reachable(url: str) -> bool:
    try:
        psycopg.connect(url.replace("postgres://", "postgresql://"), connect_timeout=3).close()
        return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="module")
def postgres(django_db_setup) -> str:
    """The test database when the suite runs on PostgreSQL, else the machine's server."""
    url = processes.test_database_url() if connection.vendor == "postgresql" else "postgres://postgres@127.0.0.1:5432/postgres"
    peers.require(reachable(url), "PostgreSQL on 127.0.0.1:5432")
    return url


def run(url: str, setup: str, **env: str) -> str:
    environ = {key: value for key, value in os.environ.items() if key != "DB_STATEMENT_TIMEOUT_MS"}
    environ.update(DATABASE_URL=url, DJANGO_SETTINGS_MODULE="opsconsole.settings", **env)
    code = SLEEP.format(setup=setup)
    return subprocess.run([sys.executable, "-c", code], env=environ, cwd=ROOT, capture_output=True, text=True, timeout=120).stdout


def test_a_web_process_statement_is_cancelled_after_its_timeout(postgres):
    out = run(postgres, "import opsconsole.asgi", DB_STATEMENT_TIMEOUT_MS="300")
    assert "canceling statement due to statement timeout" in out, out


def test_a_worker_statement_has_no_timeout(postgres):
    assert run(postgres, "django.setup()").strip().endswith("finished")


@pytest.fixture
def console_on_a_hung_database():
    """A real web process whose database accepts connections and never answers; its connect
    timeout (60 s) is far longer than the clients below wait, so an answer cannot come from it."""
    hung = HungPeer()
    database = f"postgres://postgres@127.0.0.1:{hung.port}/hung"
    proc, url = start_console(DATABASE_URL=database, DB_CONNECT_TIMEOUT="60", HEALTH_PROBE_SECONDS="3")
    yield url
    hung.close()  # first: ending the process's database sessions then fails at once instead of timing out
    proc.stop()


def test_healthz_reports_a_hung_database(db, console_on_a_hung_database):
    answer = httpx.get(console_on_a_hung_database + "/healthz", timeout=30)
    assert answer.status_code == 503
    assert answer.json() == {"status": "down", "database": "down: no answer within 3 s", "redis": "ok"}


def test_the_health_page_reports_a_hung_database_without_the_session(db, console_on_a_hung_database):
    """/health/ needs the database for the session and the user: with it hung, the page answers from the probes,
    for a signed-in browser (whose session cannot be looked up) as for anyone."""
    for cookies in ({"sessionid": "a-session-the-database-would-have-to-look-up"}, {}):
        answer = httpx.get(console_on_a_hung_database + "/health/", cookies=cookies, timeout=30)
        assert answer.status_code == 503
        page = answer.text
        assert "database does not answer" in page and "down: no answer within 3 s" in page
        assert '<span class="pill ok">ok</span>' in page  # Redis answered


def test_pages_answer_503_at_once_while_the_database_hangs(db, console_on_a_hung_database):
    """A page looks the database up many times (session, user, context processors, the error page): the first
    failed connect marks it down for a few seconds (opsconsole/postgresql), so the rest fail at once and the
    page says so instead of waiting one pool timeout per lookup (minutes)."""
    session = {"sessionid": "a-session-the-database-would-have-to-look-up"}
    for path in ("/", "/accounts/login/", "/infrastructure/"):
        answer = httpx.get(console_on_a_hung_database + path, cookies=session, timeout=90)
        assert answer.status_code == 503, (path, answer.text[:300])
        assert "database does not answer" in answer.text and "Console health" in answer.text
