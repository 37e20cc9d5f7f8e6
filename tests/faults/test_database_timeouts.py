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

from tests.support import peers
from tests.support.processes import ROOT, start_console

from .test_hung_peers import HungPeer

PG_URL = os.environ.get("DATABASE_URL", "") if os.environ.get("DATABASE_URL", "").startswith("postgres") else ""
PG_URL = PG_URL or "postgres://postgres@127.0.0.1:5432/postgres"

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


def reachable() -> bool:
    try:
        psycopg.connect(PG_URL.replace("postgres://", "postgresql://"), connect_timeout=3).close()
        return True
    except psycopg.Error:
        return False


def run(setup: str, **env: str) -> str:
    environ = {key: value for key, value in os.environ.items() if key != "DB_STATEMENT_TIMEOUT_MS"}
    environ.update(DATABASE_URL=PG_URL, DJANGO_SETTINGS_MODULE="opsconsole.settings", **env)
    code = SLEEP.format(setup=setup)
    return subprocess.run([sys.executable, "-c", code], env=environ, cwd=ROOT, capture_output=True, text=True, timeout=120).stdout


@pytest.fixture(scope="module")
def postgres():
    peers.require(reachable(), "PostgreSQL on 127.0.0.1:5432")


def test_a_web_process_statement_is_cancelled_after_its_timeout(postgres):
    out = run("import opsconsole.asgi", DB_STATEMENT_TIMEOUT_MS="300")
    assert "canceling statement due to statement timeout" in out, out


def test_a_worker_statement_has_no_timeout(postgres):
    assert run("django.setup()").strip().endswith("finished")


def test_healthz_reports_a_hung_database(db):
    hung = HungPeer()
    proc, url = start_console(DATABASE_URL=f"postgres://postgres@127.0.0.1:{hung.port}/hung")
    try:
        answer = httpx.get(url + "/healthz", timeout=60)
    finally:
        proc.stop()
        hung.close()
    assert answer.status_code == 503
    assert answer.json() == {"status": "down", "database": "down: no answer within 1.5 s", "redis": "ok"}
