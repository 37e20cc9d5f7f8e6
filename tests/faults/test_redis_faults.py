"""Redis hangs (SIGSTOP) or dies (kill -9) under a real console web process:
/healthz and /health/ still answer and say which dependency is down, pages that
need Redis answer 503 with a clear message (then at once, once the breaker is
open), every gateway call is still audited, and everything recovers when Redis
is back. Timings are in bench/faults.py; nothing here asserts on time — the
bounds come from the configured timeouts and the probe deadline."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from asgiref.sync import sync_to_async
from websockets.asyncio.client import connect

from apps.audit.models import AuditEvent
from tests.support.processes import start_console
from tests.support.waiting import wait_for

from .redis_peer import RedisServer

DOWN = re.compile(r"down: (TimeoutError|ConnectionError)")


@pytest.fixture
def redis_server():
    server = RedisServer()
    yield server
    server.shutdown()


@pytest.fixture
def console(transactional_db, redis_server):
    """A console web process whose Redis is `redis_server`; its breakers retry after 3 s. Its Redis
    timeout is well inside the probe deadline, so a stopped Redis is reported by its own timeout
    even on a loaded machine (the deadline itself: test_database_timeouts.py)."""
    env = {"BREAKER_RESET_SECONDS": "3", "REDIS_SOCKET_TIMEOUT": "0.5", "HEALTH_PROBE_SECONDS": "5"}
    proc, url = start_console(REDIS_URL=redis_server.url, **env)
    yield url
    proc.stop()
    print(proc.tail(80))  # shown when the test failed


@pytest.fixture
def browser_session(client, make_user, console):
    user = make_user("operator", "auditor")
    client.force_login(user)
    with httpx.Client(base_url=console, cookies={"sessionid": client.cookies["sessionid"].value}, timeout=60) as http:
        yield http


def run_health(http: httpx.Client) -> httpx.Response:
    """POST the core.health operation form, as a browser does (CSRF token from the form page)."""
    form = http.get("/operations/core.health/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    return http.post("/operations/core.health/", data={"csrfmiddlewaretoken": token}, headers={"Referer": str(form.url)})


def health_audits() -> int:
    return AuditEvent.objects.filter(operation="core.health", channel="web").count()


def test_stopped_redis_is_reported_pages_fail_fast_and_all_recovers(redis_server, browser_session):
    http = browser_session
    assert http.get("/healthz").json() == {"status": "ok", "database": "ok", "redis": "ok"}
    assert run_health(http).status_code == 200
    audits = health_audits()

    redis_server.pause()
    try:
        healthz = http.get("/healthz")
        assert healthz.status_code == 200  # the database answers: still routable, but degraded
        assert healthz.json()["status"] == "degraded" and DOWN.fullmatch(healthz.json()["redis"])
        page = http.get("/health/")
        assert page.status_code == 200 and DOWN.search(page.text)
        assert "Redis does not answer: operations are refused until it is back" in page.text

        # Each call needs the rate limiter: a clear 503; after five the breaker answers without waiting.
        answers = [run_health(http) for _ in range(6)]
        assert [a.status_code for a in answers] == [503] * 6
        assert "Redis (rate limits, live updates, job queue) did not answer" in answers[0].text
        assert any("circuit breaker is open" in a.text for a in answers[5:])
        assert "Traceback" not in answers[-1].text
        # Views that use Redis outside the gateway (the login rate limit) get a clear 503 too.
        with httpx.Client(base_url=http.base_url, timeout=60) as anonymous:
            login = anonymous.get("/accounts/login/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
            data = {"csrfmiddlewaretoken": token, "username": "nobody", "password": "wrong-password"}
            refused = anonymous.post("/accounts/login/", data=data, headers={"Referer": str(login.url)})
        assert refused.status_code == 503 and "Redis (rate limits, live updates, job queue) does not answer" in refused.text
    finally:
        redis_server.resume()

    statuses = []

    def recovered():
        statuses.append(run_health(http).status_code)
        return statuses[-1] == 200

    wait_for(recovered, what="core.health working again")
    assert http.get("/healthz").json()["status"] == "ok"
    # No audit event lost: one per gateway call, the refused ones with the reason.
    assert health_audits() == audits + len(answers) + len(statuses)
    refused = AuditEvent.objects.filter(operation="core.health", channel="web", outcome="failed")
    assert refused.count() == len(answers) + statuses.count(503)
    assert all("Redis" in event.error for event in refused)


@pytest.mark.django_db(transaction=True)
async def test_killed_redis_comes_back_and_live_pages_with_it(redis_server, browser_session, console):
    http = browser_session
    cookie = f"sessionid={http.cookies['sessionid']}"

    async def activity_socket():
        url = console.replace("http", "ws") + "/ws/live/activity/"
        return await connect(url, origin=console, additional_headers={"Cookie": cookie}, proxy=None)

    socket = await activity_socket()
    await sync_to_async(redis_server.kill)()
    healthz = await sync_to_async(http.get)("/healthz")
    assert healthz.json()["status"] == "degraded" and DOWN.fullmatch(healthz.json()["redis"])
    refused = await sync_to_async(run_health)(http)
    assert refused.status_code == 503 and "Redis" in refused.text
    await socket.close()

    await sync_to_async(redis_server.start)()  # same port, empty
    await sync_to_async(wait_for)(lambda: run_health(http).status_code == 200, what="core.health working again")
    socket = await activity_socket()  # what the browser's reconnect does
    done = await sync_to_async(run_health)(http)
    assert done.status_code == 200
    row = await asyncio.wait_for(socket.recv(), timeout=30)
    assert "core.health" in row
    await socket.close()
    failed = await sync_to_async(AuditEvent.objects.filter(operation="core.health", outcome="failed", error__contains="Redis").count)()
    assert failed >= 1
