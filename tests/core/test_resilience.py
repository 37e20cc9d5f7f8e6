"""Circuit breaker and retries against a real HTTP peer that goes away and comes back."""

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from apps.core.errors import PeerUnavailable
from apps.core.gateway import invoke
from apps.core.resilience import breaker_for, call_through, forget_breaker
from tests.support.processes import free_port


class Hello(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self):
        type(self).hits += 1
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args):
        pass


class Peer:
    def __init__(self):
        self.port = free_port()
        self.server = None

    def start(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Hello)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def peer():
    p = Peer()
    p.start()
    yield p
    if p.server:
        p.stop()


@pytest.fixture
def breaker(settings):
    settings.BREAKER_FAIL_MAX = 5
    settings.BREAKER_RESET_SECONDS = 1
    forget_breaker("test:peer")
    yield breaker_for("test:peer")
    forget_breaker("test:peer")


def get(port):
    return lambda: httpx.get(f"http://127.0.0.1:{port}/", timeout=1).text


def test_breaker_opens_after_five_failures_and_recovers(peer, breaker):
    assert call_through(breaker, get(peer.port), errors=(httpx.TransportError,)) == "hello"
    peer.stop()
    for _ in range(5):
        with pytest.raises(PeerUnavailable, match="did not answer"):
            call_through(breaker, get(peer.port), errors=(httpx.TransportError,))
    assert breaker.current_state == "open"
    with pytest.raises(PeerUnavailable, match="circuit breaker is open"):
        call_through(breaker, get(peer.port), errors=(httpx.TransportError,))
    peer.start()
    time.sleep(1.1)  # the reset timeout: the next call is the half-open trial
    assert call_through(breaker, get(peer.port), errors=(httpx.TransportError,)) == "hello"
    assert breaker.current_state == "closed"


def test_calls_through_a_closed_breaker_run_side_by_side(breaker):
    """Not one at a time (pybreaker's own call holds a lock over the call): two calls meet inside."""
    together = threading.Barrier(2, timeout=30)
    with ThreadPoolExecutor(2) as pool:
        arrived = list(pool.map(lambda _: call_through(breaker, together.wait, errors=(OSError,)), range(2)))
    assert sorted(arrived) == [0, 1]


def test_retries_an_idempotent_read_before_counting_a_failure(peer, breaker):
    peer.stop()
    Hello.hits = 0
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) == 2:
            peer.start()
        return get(peer.port)()

    assert call_through(breaker, flaky, errors=(httpx.TransportError,), retry=True) == "hello"
    # one logical call: the failed first attempt was retried, not counted against the breaker
    assert len(attempts) == 2 and breaker.fail_counter == 0 and breaker.current_state == "closed"


def test_breaker_state_shows_in_core_health(peer, breaker, make_user, actor_of):
    peer.stop()
    for _ in range(5):
        with pytest.raises(PeerUnavailable):
            call_through(breaker, get(peer.port), errors=(httpx.TransportError,))
    health = invoke("core.health", actor_of(make_user("viewer")), {"include_workers": False}).result
    state = {b.name: b.state for b in health.breakers}
    assert state["test:peer"] == "open" and health.status == "degraded"


TRIP_ELSEWHERE = """
import sys, django
django.setup()
import httpx
from apps.core.metrics import record_breaker_states
from apps.core.resilience import breaker_for, call_through
breaker = breaker_for("test:elsewhere")
for _ in range(5):
    try:
        call_through(breaker, lambda: httpx.get(sys.argv[1], timeout=1), errors=(httpx.TransportError,))
    except Exception:
        pass
record_breaker_states()  # what a worker does after every task
print("tripped", flush=True)
sys.stdin.read()  # live until the test closes stdin, then exit normally
"""


def test_health_shows_a_breaker_another_process_tripped(db, make_user, actor_of):
    """Deploys, scans and deliveries run on workers: their breakers must show on the web's health page."""
    actor = actor_of(make_user("viewer"))
    closed_port = f"http://127.0.0.1:{free_port()}/"
    worker = subprocess.Popen([sys.executable, "-c", TRIP_ELSEWHERE, closed_port], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout.readline().strip() == "tripped"
        health = invoke("core.health", actor, {"include_workers": False}).result
        assert {"name": "test:elsewhere", "state": "open", "failures": 5} in [b.model_dump() for b in health.breakers]
        assert health.status == "degraded"
    finally:
        worker.stdin.close()
        worker.wait(timeout=30)
    # A process that has gone no longer counts.
    health = invoke("core.health", actor, {"include_workers": False}).result
    assert "test:elsewhere" not in [b.name for b in health.breakers]
