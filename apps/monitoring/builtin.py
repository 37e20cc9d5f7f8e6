"""The dashboards shipped with the console: "Console" (its own metrics, as the
local Prometheus scrapes them under job="opsconsole") and "Targets" (what any
Prometheus scrapes). Installed by a data migration and by `seed_demo`."""

from __future__ import annotations

CONSOLE = {
    "slug": "console",
    "title": "Console",
    "description": "The ops console's own metrics: web latency, operations, jobs, queue, breakers, live clients.",
    "panels": [
        ("Web requests by view", "sum by (view) (rate(opsconsole_http_requests_total[1m]))", "line", "per_second", None, None, "view"),
        (
            "Web latency p95",
            "histogram_quantile(0.95, sum by (le) (rate(opsconsole_http_request_duration_seconds_bucket[5m])))",
            "line",
            "seconds",
            0.5,
            2,
            "",
        ),
        (
            "Operation calls by outcome",
            "sum by (outcome) (rate(opsconsole_operation_calls_total[5m]))",
            "area",
            "per_second",
            None,
            None,
            "outcome",
        ),
        (
            "Failed operations (1 h)",
            'sum(increase(opsconsole_operation_calls_total{outcome="failed"}[1h])) or vector(0)',
            "stat",
            "",
            1,
            10,
            "",
        ),
        ("Celery queue depth", "sum(opsconsole_celery_queue_depth) or vector(0)", "stat", "", 10, 100, ""),
        (
            "Job duration p90 by operation",
            "histogram_quantile(0.9, sum by (le, operation) (rate(opsconsole_job_duration_seconds_bucket[15m])))",
            "line",
            "seconds",
            None,
            None,
            "operation",
        ),
        ("Circuit breakers (2 = open)", "max by (connector) (opsconsole_circuit_breaker_state)", "table", "", 1, 2, "connector"),
        ("Websocket clients", "sum(opsconsole_websocket_clients) or vector(0)", "stat", "", None, None, ""),
    ],
}

TARGETS = {
    "slug": "targets",
    "title": "Targets",
    "description": "Every scrape target of the source: up or down, scrape time and size, firing alerts.",
    "panels": [
        ("Targets up", "sum(up) or vector(0)", "stat", "", None, None, ""),
        ("Targets down", "count(up == 0) or vector(0)", "stat", "", 1, 1, ""),
        ("Firing alerts", 'count(ALERTS{alertstate="firing"}) or vector(0)', "stat", "", 1, 5, ""),
        ("Up by job", "sum by (job) (up) / count by (job) (up)", "table", "ratio", None, None, "job"),
        ("Scrape duration by job", "max by (job) (scrape_duration_seconds)", "line", "seconds", None, None, "job"),
        ("Samples scraped by job", "sum by (job) (scrape_samples_scraped)", "area", "", None, None, "job"),
    ],
}

BUILTIN = (CONSOLE, TARGETS)


def install(Dashboard, Panel) -> None:
    """Create the built-in dashboards that are missing (models passed in: migrations use historical ones)."""
    for spec in BUILTIN:
        board, created = Dashboard.objects.get_or_create(
            slug=spec["slug"], defaults={"title": spec["title"], "description": spec["description"], "builtin": True}
        )
        if not created:
            continue
        for position, (title, query, chart, unit, warning, critical, legend) in enumerate(spec["panels"]):
            Panel.objects.create(
                dashboard=board,
                position=position,
                title=title,
                query=query,
                chart=chart,
                unit=unit,
                warning=warning,
                critical=critical,
                legend=legend,
            )
