"""The dashboards bench's render ratios (bench/dashboards.py runs them): a dashboard's evaluation and
page against its slowest panel's query and page, the sides alternating round by round, on loopback
(with the CPU floor the console's one GIL and Prometheus set) and with the source on another host
(bench/latency.py delays each query). Prints figures; asserts nothing about time."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def report_render_ratio(board, page_url: str, cookie: str, rounds: int, prometheus_pid: int, web_pid: int) -> None:
    """Render vs slowest panel, sides alternating: each panel's query alone (one after another) and its
    page alone (a one-panel dashboard through the same web process: session, gateway, audit, chart,
    HTML), the evaluation of the dashboard (every panel), its page through a web process."""
    import httpx
    from django.utils import timezone

    from apps.monitoring.client import PrometheusClient
    from apps.monitoring.promql import parse_duration
    from apps.monitoring.services.dashboards import evaluate, panel_results
    from apps.monitoring.services.queries import auto_step

    end = timezone.now().replace(second=0, microsecond=0)
    span = parse_duration("15m")
    client, step, panels = PrometheusClient(board.source), auto_step(span.total_seconds()), list(board.panels.all())
    solo = one_panel_pages(board, panels)
    alone: dict[str, list[float]] = {p.title: [] for p in panels}
    alone_pages: dict[str, list[float]] = {p.title: [] for p in panels}
    alone_cpu: dict[str, list[tuple[float, float]]] = {p.title: [] for p in panels}  # (console, Prometheus)
    alone_page_cpu: dict[str, list[float]] = {p.title: [] for p in panels}  # the web process's
    page_cpu = []
    evaluations, pages, console_cpu, prometheus_cpu = [], [], [], []
    query = f"?range=15m&end={end:%Y-%m-%dT%H:%M}"
    load = os.getloadavg()[0]

    with httpx.Client(base_url=page_url, headers={"Cookie": cookie}, timeout=60) as web:
        for _ in range(rounds + 1):  # the first round warms every side up and is dropped
            for panel in panels:
                started, cpu, peer_cpu = time.perf_counter(), time.process_time(), cpu_seconds(prometheus_pid)
                panel_results(client, [panel], end - span, end, step)
                alone[panel.title].append(time.perf_counter() - started)
                alone_cpu[panel.title].append((time.process_time() - cpu, cpu_seconds(prometheus_pid) - peer_cpu))
                web_cpu = cpu_seconds(web_pid)
                alone_pages[panel.title].append(_timed_page(web, solo[panel.title] + query, 1))
                alone_page_cpu[panel.title].append(cpu_seconds(web_pid) - web_cpu)
            started, cpu, peer_cpu = time.perf_counter(), time.process_time(), cpu_seconds(prometheus_pid)
            evaluate(board, "15m", end=end)
            evaluations.append(time.perf_counter() - started)
            console_cpu.append(time.process_time() - cpu)
            prometheus_cpu.append(cpu_seconds(prometheus_pid) - peer_cpu)
            web_cpu = cpu_seconds(web_pid)
            pages.append(_timed_page(web, board.get_absolute_url() + query, len(panels)))
            page_cpu.append(cpu_seconds(web_pid) - web_cpu)

    slowest_title, slowest = slowest_of(alone)
    slowest_page_title, slowest_page = slowest_of(alone_pages)
    evaluation, page = statistics.median(evaluations[1:]) * 1000, statistics.median(pages[1:]) * 1000
    loads = f"load average {load:.1f} -> {os.getloadavg()[0]:.1f}"
    print(f"\nrender vs slowest panel (medians of {rounds} alternating rounds, range 15m, {loads}):")
    print(f"  slowest panel's query alone ({slowest_title}): {slowest:.2f} ms; the 12 panels one after another: "
          f"{sum(statistics.median(t[1:]) for t in alone.values()) * 1000:.2f} ms")  # fmt: skip
    print(f"  slowest panel's page alone ({slowest_page_title}, a one-panel dashboard through uvicorn): {slowest_page:.2f} ms")
    print(f"  evaluation, every panel:  {evaluation:.2f} ms  = {evaluation / slowest:.2f}x the slowest panel's query")
    print(f"  page through uvicorn:     {page:.2f} ms  = {page / slowest:.2f}x the slowest panel's query, "
          f"{page / slowest_page:.2f}x the slowest panel's page (goal <= 1.5x)")  # fmt: skip
    # CPU, which machine load does not inflate as it does wall time. Prometheus' counter ticks in 10 ms:
    # means over the rounds. Queries on loopback wait for nothing else: a panel alone takes about its
    # CPU (console + Prometheus), and no schedule runs the evaluation in less than its floor below.
    costliest_title, costliest = max(((t, sum(map(statistics.mean, zip(*c[1:], strict=True))) * 1000) for t, c in alone_cpu.items()),
                                     key=lambda t: t[1])  # fmt: skip
    mine, peer, cores = statistics.mean(console_cpu[1:]) * 1000, statistics.mean(prometheus_cpu[1:]) * 1000, os.cpu_count()
    floor = max(mine, (mine + peer) / cores)
    print(f"  CPU: the costliest panel alone ({costliest_title}) {costliest:.1f} ms (console + Prometheus); the evaluation "
          f"console {mine:.1f} ms (one GIL) + Prometheus {peer:.1f} ms")  # fmt: skip
    print(f"  so on {cores} cores, however idle, the evaluation takes at least {floor:.1f} ms "
          f"= {floor / costliest:.2f}x the costliest panel alone")  # fmt: skip
    print(f"  Prometheus alone spends {peer:.1f} ms of CPU on the 12 queries: on {cores} cores at least {peer / cores:.1f} ms "
          f"= {peer / cores / slowest:.2f}x the slowest panel's query, whatever the console does")  # fmt: skip
    dearest_title, dearest = max(((t, statistics.mean(c[1:]) * 1000) for t, c in alone_page_cpu.items()), key=lambda t: t[1])
    whole = statistics.mean(page_cpu[1:]) * 1000
    print(f"  web process CPU per page: the dashboard {whole:.1f} ms, the costliest one-panel page ({dearest_title}) "
          f"{dearest:.1f} ms = {whole / dearest:.2f}x")  # fmt: skip


def report_remote_ratio(board, prometheus_url: str, delay_ms: float, rounds: int, page_url: str, cookie: str) -> None:
    """The same ratios with the source on another host: a proxy (bench/latency.py, its own process)
    delays each request by `delay_ms`, as the network and a busier Prometheus there would. The
    panels' waits then overlap and the console's own CPU per panel is what is left to add up."""
    import httpx
    import latency
    from django.utils import timezone

    from apps.monitoring.client import PrometheusClient
    from apps.monitoring.models import Dashboard, Panel, PrometheusSource
    from apps.monitoring.promql import parse_duration
    from apps.monitoring.services.dashboards import evaluate, panel_results
    from apps.monitoring.services.queries import auto_step

    host, port = prometheus_url.removeprefix("http://").split(":")
    proxy_port, proxy = latency.start((host, int(port)), delay_ms)
    try:
        source = PrometheusSource.objects.create(name="remote", base_url=f"http://127.0.0.1:{proxy_port}", timeout_seconds=30)
        remote = Dashboard.objects.create(slug=f"{board.slug}-remote", title=board.title, source=source)
        Panel.objects.bulk_create(Panel(dashboard=remote, position=p.position, title=p.title, query=p.query, chart=p.chart)
                                  for p in board.panels.all())  # fmt: skip
        end = timezone.now().replace(second=0, microsecond=0)
        span = parse_duration("15m")
        client, step, panels = PrometheusClient(source), auto_step(span.total_seconds()), list(remote.panels.all())
        solo = one_panel_pages(remote, panels)
        alone: dict[str, list[float]] = {p.title: [] for p in panels}
        alone_pages: dict[str, list[float]] = {p.title: [] for p in panels}
        evaluations, pages = [], []
        query = f"?range=15m&end={end:%Y-%m-%dT%H:%M}"
        with httpx.Client(base_url=page_url, headers={"Cookie": cookie}, timeout=60) as web:
            for _ in range(rounds + 1):  # the first round opens the connections and is dropped
                for panel in panels:
                    started = time.perf_counter()
                    panel_results(client, [panel], end - span, end, step)
                    alone[panel.title].append(time.perf_counter() - started)
                    alone_pages[panel.title].append(_timed_page(web, solo[panel.title] + query, 1))
                started = time.perf_counter()
                evaluate(remote, "15m", end=end)
                evaluations.append(time.perf_counter() - started)
                pages.append(_timed_page(web, remote.get_absolute_url() + query, len(panels)))
    finally:
        proxy.terminate()
        proxy.wait()

    (title, slowest), (page_title, slowest_page) = slowest_of(alone), slowest_of(alone_pages)
    evaluation, page = statistics.median(evaluations[1:]) * 1000, statistics.median(pages[1:]) * 1000
    print(f"\nthe source {delay_ms:g} ms away (a delaying proxy; medians of {rounds} alternating rounds):")
    print(f"  slowest panel's query alone ({title}): {slowest:.2f} ms; evaluation, every panel: {evaluation:.2f} ms "
          f"= {evaluation / slowest:.2f}x (goal <= 1.5x)")  # fmt: skip
    print(f"  slowest panel's page alone ({page_title}): {slowest_page:.2f} ms; the dashboard's page through uvicorn: {page:.2f} ms "
          f"= {page / slowest_page:.2f}x (goal <= 1.5x)")  # fmt: skip


def one_panel_pages(board, panels) -> dict[str, str]:
    """Each panel's own one-panel dashboard on the board's source: panel title -> its page's path."""
    from apps.monitoring.models import Dashboard, Panel

    pages = {}
    for panel in panels:
        one = Dashboard.objects.create(slug=f"{board.slug}-solo-{panel.position}", title=panel.title, source=board.source)
        Panel.objects.create(dashboard=one, position=0, title=panel.title, query=panel.query, chart=panel.chart)
        pages[panel.title] = one.get_absolute_url()
    return pages


def slowest_of(sides: dict[str, list[float]]) -> tuple[str, float]:
    """The side with the largest median (the first round dropped: it warms up), in ms."""
    return max(((title, statistics.median(times[1:]) * 1000) for title, times in sides.items()), key=lambda t: t[1])


def _timed_page(web, url: str, panels: int) -> float:
    """Seconds to GET a dashboard page, which must show its panels (a refusal or an error page is 200 too)."""
    started = time.perf_counter()
    response = web.get(url)
    elapsed = time.perf_counter() - started
    shown = response.text.count('<section class="panel chart-panel')
    assert response.status_code == 200 and shown == panels, f"{url}: {response.status_code}, {shown} of {panels} panels"
    return elapsed
