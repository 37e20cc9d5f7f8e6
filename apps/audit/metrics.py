"""Streaming figures for /metrics: deliveries and failures counted where they happen,
lag read from the database when scraped (it is shared state, not a process's)."""

from __future__ import annotations

from django.conf import settings
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

STREAM_DELIVERED = Counter("opsconsole_audit_stream_delivered_total", "Audit events delivered to a SIEM sink.", ["sink"])
STREAM_FAILURES = Counter("opsconsole_audit_stream_failures_total", "Failed deliveries of a batch to a SIEM sink.", ["sink"])


def sink_lags() -> list[dict]:
    """Every enabled sink's lag: name, events and seconds behind, consecutive failures, last error."""
    from .models import AuditSink
    from .stream import head_seq, lag

    head = head_seq()
    rows = []
    for sink in AuditSink.objects.filter(enabled=True):
        events, seconds = lag(sink, head=head)
        rows.append({"name": sink.name, "events": events, "seconds": seconds, "failures": sink.failures, "error": sink.last_error})
    return rows


class StreamLagCollector:
    def collect(self):
        events = GaugeMetricFamily("opsconsole_audit_stream_lag_events", "Audit events a SIEM sink has not received yet.", labels=["sink"])
        seconds = GaugeMetricFamily(
            "opsconsole_audit_stream_lag_seconds", "Age of the oldest audit event a SIEM sink has not received.", labels=["sink"]
        )
        for row in sink_lags():
            events.add_metric([row["name"]], row["events"])
            seconds.add_metric([row["name"]], row["seconds"])
        yield events
        yield seconds


def health_checks() -> list[tuple[str, str, str]]:
    """The audit appender's row (when one is configured), and one row per sink: a warning while
    deliveries fail, or when its oldest undelivered event is older than ten beat intervals (no
    worker drains)."""
    stale = settings.AUDIT_STREAM_SECONDS * 10
    return _appender_rows() + [
        (
            f"audit stream → {row['name']}",
            "warning" if row["failures"] or row["seconds"] > stale else "ok",
            f"{row['events']} event(s), {row['seconds']:.1f} s behind"
            + (f"; {row['failures']} failed deliveries, last: {row['error']}" if row["failures"] else ""),
        )
        for row in sink_lags()
    ]


def _appender_rows() -> list[tuple[str, str, str]]:
    from .appender import answers

    path = settings.AUDIT_APPENDER_SOCKET
    if not path:
        return []
    if answers(path):
        return [("audit appender", "ok", f"listening on {path}")]
    return [("audit appender", "warning", f"nothing listens on {path}: every process appends its own audit events (slower under load)")]
