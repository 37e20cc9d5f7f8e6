"""The console's own Prometheus metrics (exposed at /metrics by the monitoring app)."""

import atexit
import os
from pathlib import Path

from django.conf import settings
from prometheus_client import Counter, Gauge, Histogram, multiprocess

from .resilience import breaker_states

OPERATION_CALLS = Counter(
    "opsconsole_operation_calls_total", "Gateway calls by operation and outcome.", ["operation", "outcome", "channel"]
)
OPERATION_SECONDS = Histogram("opsconsole_operation_duration_seconds", "Gateway call duration by operation.", ["operation"])
JOB_SECONDS = Histogram(
    "opsconsole_job_duration_seconds",
    "Job run time by operation and final status.",
    ["operation", "status"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
)
WEBSOCKET_CLIENTS = Gauge(
    "opsconsole_websocket_clients",
    "Open live websockets by topic kind (job, jobs, dashboard, user, ...).",
    ["topic"],
    multiprocess_mode="livesum",
)

# Collectors of shared state (database rows, the broker) that /metrics runs when scraped; apps add theirs.
SCRAPE_COLLECTORS: list = []

BREAKER_STATES = ("closed", "half-open", "open")
# The worst state any live process sees: each process has its own breakers.
BREAKER_STATE = Gauge(
    "opsconsole_circuit_breaker_state",
    "Connector circuit breaker: 0 closed, 1 half-open, 2 open (worst over live processes).",
    ["connector"],
    multiprocess_mode="livemax",
)
BREAKER_FAILURES = Gauge(
    "opsconsole_circuit_breaker_failures",
    "Consecutive failures counted by a connector's breaker (highest over live processes).",
    ["connector"],
    multiprocess_mode="livemax",
)


def record_breaker_states(**_signal_kwargs) -> None:
    """Copy this process's breakers (apps.core.resilience.breaker_states) into the shared gauges.

    Called after every monitoring peer call, every web request and every Celery
    task, and at scrape time, so each process's view is current in the files.
    """
    for name, state in breaker_states().items():
        value = BREAKER_STATES.index(state["state"]) if state["state"] in BREAKER_STATES else 2
        # Only what changed is written: two gauge writes per breaker cost ~35 µs per call otherwise.
        # Keyed by pid too: a forked worker starts with empty gauge files of its own.
        key, written = (os.getpid(), name), (value, state["failures"])
        if _recorded.get(key) != written:
            BREAKER_STATE.labels(name).set(value)
            BREAKER_FAILURES.labels(name).set(state["failures"])
            _recorded[key] = written


_recorded: dict[tuple[int, str], tuple[int, int]] = {}  # (pid, connector) -> (state, failures) written to the gauges


def shared_breaker_states() -> dict[str, dict]:
    """Every connector's breaker as the worst live process sees it: a breaker a
    worker tripped (deploys, scans, deliveries run there) shows on the web's health page too."""
    record_breaker_states()
    files = [str(f) for f in Path(settings.METRICS_DIR).glob("gauge_livemax_*.db")]
    merged: dict[str, dict] = {}
    for metric in multiprocess.MultiProcessCollector.merge(files, accumulate=False):
        field = {BREAKER_STATE._name: "state", BREAKER_FAILURES._name: "failures"}.get(metric.name)
        for sample in metric.samples if field else ():
            entry = merged.setdefault(sample.labels["connector"], {"state": "closed", "failures": 0})
            entry[field] = BREAKER_STATES[min(2, int(sample.value))] if field == "state" else int(sample.value)
    return dict(sorted(merged.items()))


def forget_process(**_signal_kwargs) -> None:
    """A process leaves: its live gauges (websocket clients, dashboard viewers, breaker states) stop counting."""
    multiprocess.mark_process_dead(os.getpid())


atexit.register(forget_process)
