"""Server-side charts: the geometry of a panel's SVG (paths, axes, thresholds)
and value formatting. The `chart_svg` tag (templatetags/monitoring_charts.py)
writes the SVG; no chart script runs in the browser, so a live refresh is one
rendered fragment sent to every viewer."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.utils import timezone

WIDTH, HEIGHT = 420, 170
LEFT, RIGHT, TOP, BOTTOM = 52, 8, 8, 20
MAX_SERIES = 10
_TIME_STEPS = [60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400]
_SI = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
_IEC = [(2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")]


def _short(value: float) -> str:
    for size, suffix in _SI:
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}" if value else "0"


def format_value(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if unit == "percent":
        return f"{value:.1f}%"
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    if unit == "seconds":
        size = abs(value)
        if size and size < 1e-3:
            return f"{value * 1e6:.3g} µs"
        if size and size < 1:
            return f"{value * 1e3:.3g} ms"
        if size < 120:
            return f"{value:.3g} s"
        return f"{value / 60:.3g} min" if size < 7200 else f"{value / 3600:.3g} h"
    if unit == "bytes":
        for size, suffix in _IEC:
            if abs(value) >= size:
                return f"{value / size:.3g} {suffix}"
        return f"{value:.0f} B"
    if unit == "per_second":
        return f"{_short(value)}/s"
    return _short(value)


def series_name(labels: dict[str, str], legend: list[str] | None = None) -> str:
    if legend:
        return " · ".join(labels.get(name, "") for name in legend) or "(no labels)"
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    return ", ".join(f"{k}={v}" for k, v in sorted(shown.items())) or labels.get("__name__", "(value)")


def level(value: float | None, warning: float | None, critical: float | None) -> str:
    """ok, warning or critical by the panel's thresholds (at or above)."""
    if value is None or (warning is None and critical is None):
        return "none"
    if critical is not None and value >= critical:
        return "critical"
    if warning is not None and value >= warning:
        return "warning"
    return "ok"


def _nice(step: float) -> float:
    exponent = math.floor(math.log10(step))
    fraction = step / 10**exponent
    nice = 1 if fraction <= 1 else 2 if fraction <= 2 else 5 if fraction <= 5 else 10
    return nice * 10**exponent


@dataclass
class SeriesPath:
    name: str
    color: int
    d: str
    area: str
    last: str


@dataclass
class Chart:
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM
    series: list[SeriesPath] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    thresholds: list[tuple[float, str, str]] = field(default_factory=list)
    hidden: int = 0
    empty: bool = True


def line_chart(panel, start: datetime, end: datetime) -> Chart:
    """Geometry of a line (or area) panel between start and end."""
    chart = Chart()
    t0, t1 = start.timestamp(), end.timestamp()
    values = [v for s in panel.series for _, v in s.points if v is not None and math.isfinite(v)]
    if not values or t1 <= t0:
        return chart
    chart.empty = False
    thresholds = [(t, name) for t, name in ((panel.warning, "warning"), (panel.critical, "critical")) if t is not None]
    low, high = min(min(values), 0), max(values)
    high = max([high] + [t for t, _ in thresholds if t <= max(high, 1e-12) * 2])
    if high == low:
        high = low + (abs(low) or 1)
    step = _nice((high - low) / 4)
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step
    span_x, span_y = chart.right - chart.left, chart.bottom - chart.top

    def x(t: float) -> float:
        return round(chart.left + (t - t0) / (t1 - t0) * span_x, 1)

    def y(v: float) -> float:
        return round(chart.bottom - (v - low) / (high - low) * span_y, 1)

    tick = low
    while tick <= high + step / 2:
        chart.y_ticks.append((y(tick), format_value(tick, panel.unit)))
        tick += step
    every = next((s for s in _TIME_STEPS if (t1 - t0) / s <= 6), _TIME_STEPS[-1])
    fmt = "%H:%M" if t1 - t0 <= 2 * 86400 else "%a %d"
    tick = math.ceil(t0 / every) * every
    while tick <= t1:
        local = timezone.localtime(datetime.fromtimestamp(tick, tz=UTC))
        chart.x_ticks.append((x(tick), local.strftime(fmt)))
        tick += every
    chart.thresholds = [(y(t), name, format_value(t, panel.unit)) for t, name in thresholds if low <= t <= high]
    # Each point is formatted once and shared by the line and the area; series on one step grid
    # share their x coordinates. A page draws thousands of points: this loop is its chart cost.
    left, bottom, xs = chart.left, chart.bottom, {}
    for index, s in enumerate(panel.series[:MAX_SERIES]):
        runs, run = [], []
        for t, v in s.points:
            if v is None or not math.isfinite(v):
                if run:
                    runs.append(run)
                run = []
                continue
            px = xs.get(t)
            if px is None:
                px = xs[t] = f"{left + (t - t0) / (t1 - t0) * span_x:.1f}"
            run.append(f"{px},{bottom - (v - low) / (high - low) * span_y:.1f}")
        if run:
            runs.append(run)
        # A lone point (a gap on both sides) gets a one-unit stroke so that it shows.
        d = " ".join("M" + " L".join(run) + (" l1,0" if len(run) == 1 else "") for run in runs)
        area = " ".join(
            f"M{run[0].partition(',')[0]},{bottom} L" + " L".join(run) + f" L{run[-1].partition(',')[0]},{bottom} Z" for run in runs
        )
        last = next((v for _, v in reversed(s.points) if v is not None), None)
        chart.series.append(SeriesPath(series_name(s.labels, panel.legend), index, d, area, format_value(last, panel.unit)))
    chart.hidden = max(0, len(panel.series) - MAX_SERIES)
    return chart
