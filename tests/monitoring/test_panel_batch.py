"""A dashboard's panels go to the source as one batch (PrometheusClient.api_many): all sent before any
answer is read. What each request meets is settled as a lone request's would be: a timeout, a peer
that is down, an open breaker."""

import io
import threading
from datetime import UTC, datetime

from apps.core.gateway import invoke
from apps.core.resilience import breaker_for, breaker_states, forget_breaker
from apps.monitoring.models import Dashboard, Panel, PrometheusSource
from tests.support.processes import free_port

from . import peers


class HangingGate(peers.Gate):
    """Forwards queries, except that one whose text holds "hang" gets no answer until `released`;
    counts the requests it saw and the most in flight at once."""

    released = threading.Event()
    lock = threading.Lock()
    seen = in_flight = most = 0

    def admit(self) -> bool:
        gate = type(self)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.rfile = io.BytesIO(body)  # forward() reads it again
        with gate.lock:
            gate.seen += 1
            gate.in_flight += 1
            gate.most = max(gate.most, gate.in_flight)
        if b"hang" in body:
            gate.released.wait(60)
        return True

    def reply(self, answer) -> None:
        with type(self).lock:
            type(self).in_flight -= 1
        super().reply(answer)


def board_of(source: PrometheusSource, queries: list[str]) -> Dashboard:
    board = Dashboard.objects.create(slug=f"batch-{source.name}", title="Batch", source=source)
    for position, query in enumerate(queries):
        Panel.objects.create(dashboard=board, position=position, title=f"Panel {position}", query=query, chart="stat")
    return board


def evaluate(viewer, board: Dashboard):
    return invoke("monitoring.dashboard", viewer, {"dashboard": board.slug, "end": datetime.now(UTC).isoformat()}).result


def serve(gate: type[HangingGate], upstream: str):
    gate.upstream, gate.seen, gate.in_flight, gate.most = upstream, 0, 0, 0
    gate.released = threading.Event()
    return peers.serve_gate(gate)


def test_a_panel_that_gets_no_answer_times_out_alone_and_the_others_draw(db, prometheus, viewer):
    url, server = serve(HangingGate, prometheus.url)
    forget_breaker("prometheus:hanging")
    try:
        source = PrometheusSource.objects.create(name="hanging", base_url=url, timeout_seconds=1)
        board = board_of(source, ["vector(1)", "vector(2) # hang", "vector(3)", "vector(4) # hang"])
        data = evaluate(viewer, board)
    finally:
        HangingGate.released.set()
        server.shutdown()
        server.server_close()
    values = [p.values[0].value if p.values else None for p in data.panels]
    assert values == [1.0, None, 3.0, None]
    # The source answered the others: it is up, and each panel left without an answer says why.
    assert data.source_status == "up" and data.problem == ""
    assert [bool(p.error) for p in data.panels] == [False, True, False, True]
    assert all("did not answer in time" in data.panels[i].error for i in (1, 3))
    # All four were sent before any answer was read: the two waits overlapped, one timeout in all.
    assert HangingGate.seen == 4 and HangingGate.most == 4


def test_a_source_that_is_down_fails_every_panel_once_each_against_its_breaker(db, viewer):
    forget_breaker("prometheus:gone")
    source = PrometheusSource.objects.create(name="gone", base_url=f"http://127.0.0.1:{free_port()}", timeout_seconds=1)
    board = board_of(source, ["vector(1)", "vector(2)", "vector(3)"])
    data = evaluate(viewer, board)
    assert [p.error for p in data.panels] == ["Not queried: the source is down."] * 3
    assert data.source_status == "down" and "did not answer" in data.problem and "Traceback" not in data.problem
    # Each panel's request was retried, then counted once: 3 failures, below the 5 that open the breaker.
    assert breaker_states()["prometheus:gone"] == {"state": "closed", "failures": 3}


def test_with_the_breaker_open_nothing_is_sent_ahead(db, prometheus, viewer):
    url, server = serve(HangingGate, prometheus.url)
    forget_breaker("prometheus:guarded")
    try:
        source = PrometheusSource.objects.create(name="guarded", base_url=url)
        board = board_of(source, ["vector(1)", "vector(2)"])
        breaker_for("prometheus:guarded").open()
        data = evaluate(viewer, board)
        assert HangingGate.seen == 0
        assert [p.error for p in data.panels] == ["Not queried: the source is down."] * 2
        assert "circuit breaker is open" in data.problem
        breaker_for("prometheus:guarded").close()
        assert [p.values[0].value for p in evaluate(viewer, board).panels] == [1.0, 2.0]
        assert HangingGate.seen == 2
    finally:
        HangingGate.released.set()
        server.shutdown()
        server.server_close()
