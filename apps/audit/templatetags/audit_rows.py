"""The audit log's table rows, rendered in Python: a page of the log is 100 rows, and a template
include per row cost most of the page's CPU."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from django import template
from django.template.defaultfilters import floatformat
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

register = template.Library()


@register.simple_tag
def audit_rows(events, link_base: str = "", compact: bool = False) -> SafeString:
    """`<tr>` rows of audit events; with `link_base` (the log's URL) each links its event and its flow.
    Every value is escaped here (html.escape, quotes included)."""
    base = escape(link_base or "")
    return mark_safe("\n".join(_row(event, base, compact) for event in events))  # noqa: S308


def _row(event, base: str, compact: bool) -> str:
    seq = f'<a href="{base}{event.seq}/">{event.seq}</a>' if base else str(event.seq)
    token = f' <small class="muted" title="{escape(event.token)}">token</small>' if event.token else ""
    error = f' <small class="muted">{escape(Truncator(event.error).chars(80))}</small>' if event.error else ""
    outcome = escape(event.outcome)
    row = (
        f'<tr id="audit-{event.seq}"><td class="num">{seq}</td>'
        f"<td><small>{timezone.localtime(event.at):%Y-%m-%d %H:%M:%S}</small></td>"
        f"<td>{escape(event.actor or '—')}{token}</td><td>{escape(event.channel)}</td>"
        f"<td><code>{escape(event.operation)}</code></td><td>{escape(Truncator(event.target).chars(60))}</td>"
        f'<td><span class="pill {outcome}">{outcome}</span>{error}</td>'
    )
    if not compact:
        row += f'<td class="num">{floatformat(event.duration_ms, 1)}</td>'
    if base:
        flow = ""
        if event.correlation_id:
            cid = escape(event.correlation_id)
            href = f"{base}?correlation={quote(event.correlation_id, safe='')}"
            flow = f'<a class="flow" href="{href}" title="Every event of this flow ({cid})">this flow</a>'
        row += f"<td>{flow}</td>"
    return row + "</tr>"
