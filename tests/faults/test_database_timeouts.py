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


def test_healthz_reports_a_hung_database(db):
    hung = HungPeer()
    database = f"postgres://postgres@127.0.0.1:{hung.port}/hung"
    proc, url = start_console(DATABASE_URL=database, DB_CONNECT_TIMEOUT="60", HEALTH_PROBE_SECONDS="3")
    try:
        answer = httpx.get(url + "/healthz", timeout=60)
    finally:
        proc.stop()
        hung.close()
    assert answer.status_code == 503
    assert answer.json() == {"status": "down", "database": "down: no answer within 3 s", "redis": "ok"}
