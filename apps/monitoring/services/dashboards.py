"""Evaluating a saved dashboard: every panel's query over a time range.

In live mode the range ends on the dashboard's refresh tick ("slot") and the
result is cached per (dashboard, range, slot) behind a single-flight lock, so
however many viewers, page loads and web processes ask during one interval,
Prometheus answers each panel's query once.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Literal

from django.core.cache import cache
from pydantic import BaseModel, Field

from apps.core.errors import PeerUnavailable
from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from ..client import PrometheusClient
from ..errors import MonitoringError
from ..models import Dashboard
from ..promql import parse_duration
from .common import Time, get_source
from .queries import RangeSeries, Series, auto_step, instant_series, range_series

Range = Literal[Dashboard.RANGES]


class DashboardInput(BaseModel):
    dashboard: str = Field(max_length=60, pattern=r"^[-a-zA-Z0-9_]+$", description="The dashboard's slug.")
    range: Range | None = Field(None, description="How far back from the end; default: the dashboard's own.")
    end: Time = Field(None, description="End of the range (ISO 8601). Empty: live — now, rounded to the refresh interval.")


class PanelData(BaseModel):
    id: int
    title: str
    chart: str
    unit: str
    warning: float | None
    critical: float | None
    legend: list[str]
    series: list[RangeSeries] = Field(default_factory=list, description="line and area panels")
    values: list[Series] = Field(default_factory=list, description="stat and table panels")
    error: str = ""


class DashboardData(BaseModel):
    dashboard: str
    title: str
    source: str
    range: str
    start: datetime
    end: datetime
    step_seconds: float
    live: bool
    slot: int | None = Field(description="The refresh tick this data is for (live mode).")
    source_status: str = Field(description="up, or down when the source could not be reached.")
    problem: str = ""
    panels: list[PanelData]


def slot_of(dashboard: Dashboard, now: float | None = None) -> int:
    return int((time.time() if now is None else now) // dashboard.refresh_seconds)


def evaluate(dashboard: Dashboard, range_: str, end: datetime | None) -> DashboardData:
    """Query every panel. Live data (no `end`) comes from the cache when this slot was already evaluated."""
    if end is not None:
        return _query_panels(dashboard, range_, end, live=False, slot=None)
    slot = slot_of(dashboard)
    key = f"monitoring:dashboard:json:{dashboard.pk}:{dashboard.updated_at.timestamp()}:{range_}:{slot}"
    cached = cache.get(key)
    if cached is None and not cache.add(f"{key}:lock", 1, timeout=dashboard.refresh_seconds * 2):
        cached = _wait_for(key, timeout=min(30.0, dashboard.refresh_seconds * 2))
    if cached is not None:
        # Cached as JSON text, parsed and validated by pydantic-core: a Python dict of the same data
        # took 5x the CPU to validate (thousands of points), on every live page load.
        return DashboardData.model_validate_json(cached)
    try:
        data = _query_panels(dashboard, range_, datetime.fromtimestamp(slot * dashboard.refresh_seconds, tz=UTC), live=True, slot=slot)
    except BaseException:
        cache.delete(f"{key}:lock")  # failed: waiting callers stop waiting for a result that will not come
        raise
    cache.set(key, data.model_dump_json(), timeout=dashboard.refresh_seconds * 3)
    return data


def _wait_for(key: str, timeout: float):
    """Another viewer or process is evaluating this slot: wait for its result (None if it failed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.05)
        value, locked = cache.get(key), cache.get(f"{key}:lock")
        if value is not None or locked is None:
            return value
    return None


def _query_panels(dashboard: Dashboard, range_: str, end: datetime, *, live: bool, slot: int | None) -> DashboardData:
    source = dashboard.source or get_source("default")
    span = parse_duration(range_)
    start = end - span
    step = auto_step(span.total_seconds())
    client = PrometheusClient(source)
    panels = list(dashboard.panels.all())
    # Every panel's query in flight at once (one thread, post_many): a render costs about its slowest panel.
    results = panel_results(client, panels, start, end, step)
    problem = next((p for _, p in results if p), "")
    panels = [data for data, _ in results]
    return DashboardData(
        dashboard=dashboard.slug,
        title=dashboard.title,
        source=source.name,
        range=range_,
        start=start,
        end=end,
        step_seconds=step,
        live=live,
        slot=slot,
        source_status="down" if problem else "up",
        problem=problem,
        panels=panels,
    )


def panel_results(client: PrometheusClient, panels: list, start: datetime, end: datetime, step: float) -> list[tuple[PanelData, str]]:
    """Each panel's data, and the source's problem when it is down (then every panel says so)."""
    calls = [client.instant(p.query, end) if p.instant else client.ranged(p.query, start, end, step) for p in panels]
    results = client.api_many(calls)
    # The source answered some: one that got no answer (its query timed out) is that panel's problem, not a source down.
    down = all(isinstance(result, PeerUnavailable) for result in results)
    return [_panel(panel, result, down) for panel, result in zip(panels, results, strict=True)]


def _panel(panel, result, down: bool) -> tuple[PanelData, str]:
    data = PanelData(
        id=panel.pk,
        title=panel.title,
        chart=panel.chart,
        unit=panel.unit,
        warning=panel.warning,
        critical=panel.critical,
        legend=[name.strip() for name in panel.legend.split(",") if name.strip()],
    )
    try:
        if isinstance(result, Exception):
            raise result
        if panel.instant:
            data.values = instant_series(result["resultType"], result["result"])
        else:
            data.series = range_series(result)
    except PeerUnavailable as exc:
        if not down:
            data.error = exc.message
            return data, ""
        data.error = "Not queried: the source is down."
        return data, exc.message
    except MonitoringError as exc:
        data.error = exc.message
    return data, ""


@operation("monitoring.dashboard", risk=Risk.READ, target=lambda p: f"{p.dashboard} ({p.range or 'default range'})")
def dashboard(ctx: Context, params: DashboardInput) -> DashboardData:
    """Evaluate every panel of a saved dashboard over a time range (5m..7d back from `end`, default live/now).

    Line and area panels return `series` (points over the range), stat and table
    panels `values` (instant values at the end). A panel whose query fails carries
    `error`; when the source is down, `source_status` is "down" and `problem` says why.
    """
    board = Dashboard.objects.select_related("source").filter(slug=params.dashboard).first()
    if board is None:
        raise MonitoringError(f"There is no dashboard {params.dashboard!r}.", 404)
    return evaluate(board, params.range or board.default_range, params.end)
