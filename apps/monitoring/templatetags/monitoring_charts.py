"""A panel's chart (SVG and legend), rendered in Python from the geometry in apps.monitoring.charts:
a dashboard draws a dozen charts of a few hundred template variables each, and the template
that drew them cost more CPU than the charts' geometry."""

from __future__ import annotations

from html import escape

from django import template
from django.utils.safestring import SafeString, mark_safe

from ..charts import Chart

register = template.Library()


@register.simple_tag
def chart_svg(chart: Chart, kind: str = "line", label: str = "") -> SafeString:
    """The chart's `<svg>` and its legend; `kind` "area" fills under each line. Every text is escaped
    here (html.escape, quotes included); coordinates are numbers the geometry formatted, never localized."""
    svg = [f'<svg class="chart" viewBox="0 0 {chart.width} {chart.height}" role="img" aria-label="{escape(label or "chart")}">']
    if chart.empty:
        svg.append(f'<text x="{chart.width // 2}" y="{chart.height // 2}" class="nodata" text-anchor="middle">no data</text>')
    else:
        left, right = chart.left, chart.right
        svg.append(
            "".join(
                f'<line class="grid" x1="{left}" x2="{right}" y1="{y}" y2="{y}"/>'
                f'<text class="tick" x="{left - 6}" y="{y}" dy="4" text-anchor="end">{escape(tick)}</text>'
                for y, tick in chart.y_ticks
            )
        )
        ticks = (f'<text class="tick" x="{x}" y="{chart.height}" dy="-6" text-anchor="middle">{escape(t)}</text>' for x, t in chart.x_ticks)
        svg.append("".join(ticks))
        paths = []
        for s in chart.series:
            if kind == "area":
                paths.append(f'<path class="area s{s.color}" d="{s.area}"/>')
            paths.append(f'<path class="line s{s.color}" d="{s.d}"><title>{escape(s.name)}: {escape(s.last)}</title></path>')
        svg.append("".join(paths))
        svg.append(
            "".join(
                f'<line class="threshold {name}" x1="{left}" x2="{right}" y1="{y}" y2="{y}"><title>{name} at {escape(value)}</title></line>'
                for y, name, value in chart.thresholds
            )
        )
    svg.append("</svg>")
    if chart.series:
        items = "".join(
            f'<li><span class="swatch s{s.color}"></span><span class="name">{escape(s.name)}</span>'
            f' <span class="last">{escape(s.last)}</span></li>'
            for s in chart.series
        )
        more = f'<li class="muted">and {chart.hidden} more series</li>' if chart.hidden else ""
        svg.append(f'<ul class="legend">{items}{more}</ul>')
    return mark_safe("\n".join(svg))  # noqa: S308
