"""The console's own Prometheus metrics (exposed at /metrics by the monitoring app)."""

from prometheus_client import Counter, Gauge, Histogram

OPERATION_CALLS = Counter(
    "opsconsole_operation_calls_total", "Gateway calls by operation and outcome.", ["operation", "outcome", "channel"]
)
OPERATION_SECONDS = Histogram("opsconsole_operation_duration_seconds", "Gateway call duration by operation.", ["operation"])
JOB_SECONDS = Histogram(
    "opsconsole_job_duration_seconds",
    "Job run time by operation and final status.",
    ["operation", "status"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
)
WEBSOCKET_CLIENTS = Gauge(
    "opsconsole_websocket_clients",
    "Open live websockets by topic kind (job, jobs, dashboard, user, ...).",
    ["topic"],
    multiprocess_mode="livesum",
)
