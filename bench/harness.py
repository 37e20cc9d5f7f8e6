"""Shared set-up for benchmarks: Django on a throw-away database (created like
the test database, destroyed at the end), and latency statistics.

Benchmarks print figures; they never assert on time (machines are noisy)."""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")
os.environ.setdefault("REDIS_PREFIX", f"bench-{os.getpid()}")
os.environ.setdefault("CELERY_QUEUE", f"bench-{os.getpid()}")

import django

django.setup()

from django.db import connection  # noqa: E402


@contextlib.contextmanager
def scratch_database(keep: bool = False):
    """A fresh, migrated database named test_<name>; dropped afterwards."""
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=keep)
    try:
        yield name
    finally:
        if not keep:
            connection.creation.destroy_test_db(name, verbosity=0)


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": statistics.median(ordered), "p95": pick(0.95), "p99": pick(0.99), "n": len(ordered)}


def timed(fn, repeat: int, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def fmt(stats: dict[str, float]) -> str:
    return f"p50 {stats['p50']:.3f} ms  p95 {stats['p95']:.3f} ms  p99 {stats['p99']:.3f} ms  (n={stats['n']})"
