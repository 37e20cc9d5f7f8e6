"""What a template needs to draw each panel of evaluated dashboard data."""

from __future__ import annotations

from dataclasses import dataclass, field

from .charts import Chart, format_value, level, line_chart, series_name

MAX_TABLE_ROWS = 50


@dataclass
class PanelView:
    id: int
    title: str
    chart_type: str
    error: str = ""
    chart: Chart | None = None
    stat: str = ""
    stat_level: str = "none"
    stat_more: int = 0
    rows: list[tuple[str, str, str]] = field(default_factory=list)


def panel_views(data) -> list[PanelView]:
    views = []
    for panel in data.panels:
        view = PanelView(id=panel.id, title=panel.title, chart_type=panel.chart, error=panel.error)
        if panel.error:
            views.append(view)
            continue
        if panel.chart in ("line", "area"):
            view.chart = line_chart(panel, data.start, data.end)
        elif panel.chart == "stat":
            first = panel.values[0].value if panel.values else None
            view.stat = format_value(first, panel.unit) if panel.values else "no data"
            view.stat_level = level(first, panel.warning, panel.critical)
            view.stat_more = max(0, len(panel.values) - 1)
        else:
            view.rows = [
                (series_name(s.labels, panel.legend), format_value(s.value, panel.unit), level(s.value, panel.warning, panel.critical))
                for s in panel.values[:MAX_TABLE_ROWS]
            ]
        views.append(view)
    return views
