"""The local Prometheus and Alertmanager that `bin/console` runs beside the
console when their binaries are installed (Debian: prometheus,
prometheus-alertmanager). Prometheus scrapes the console's /metrics and loads
a few rules about the console itself; the demo source "default" points at it.
To use an existing Prometheus instead, set MONITORING_LOCAL_PEERS=0 and
MONITORING_PROMETHEUS_URL (and MONITORING_ALERTMANAGER_URL), or edit the
source under Monitoring → Sources."""

from __future__ import annotations

import logging
import shlex
import shutil
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

log = logging.getLogger(__name__)

RULES = """groups:
  - name: opsconsole
    rules:
      - alert: ConsoleScrapeFailing
        expr: up{job="opsconsole"} == 0
        for: 1m
        labels: {severity: critical}
        annotations: {summary: "Prometheus cannot scrape the console's /metrics."}
      - alert: ConsoleBreakerOpen
        expr: max by (connector) (opsconsole_circuit_breaker_state) == 2
        labels: {severity: warning}
        annotations: {summary: "A connector's circuit breaker is open: its peer is failing."}
      - alert: ConsoleQueueBacklog
        expr: opsconsole_celery_queue_depth > 20
        for: 5m
        labels: {severity: warning}
        annotations: {summary: "Jobs are waiting in the Celery queue: are the workers running?"}
"""


def clear_metric_files() -> None:
    """Samples of processes from an earlier run would otherwise be added to this run's."""
    for path in Path(settings.METRICS_DIR).glob("*.db"):
        path.unlink(missing_ok=True)


def prometheus_config(console_url: str, alertmanager: str, rules_file: Path, token_file: Path | None) -> str:
    parts = urlsplit(console_url)
    auth = f"\n    authorization: {{credentials_file: {token_file}}}" if token_file else ""
    alerting = f'alerting:\n  alertmanagers:\n    - static_configs: [{{targets: ["{alertmanager}"]}}]\n' if alertmanager else ""
    return f"""global:
  scrape_interval: 15s
  evaluation_interval: 15s
rule_files: ["{rules_file}"]
{alerting}scrape_configs:
  - job_name: opsconsole
    scheme: {parts.scheme}
    static_configs: [{{targets: ["{parts.netloc}"]}}]{auth}
  - job_name: prometheus
    static_configs: [{{targets: ["{urlsplit(settings.MONITORING_PROMETHEUS_URL).netloc}"]}}]
"""


ALERTMANAGER_CONFIG = """route:
  receiver: console
  group_wait: 10s
receivers:
  - name: console
"""


def local_peer_commands(data_dir: Path, env: dict) -> dict[str, str]:
    prometheus, alertmanager = shutil.which("prometheus"), shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if not settings.MONITORING_LOCAL_PEERS:
        return {}
    if not prometheus:
        log.warning(
            "No prometheus binary: the console starts without a local Prometheus. Install the Debian package "
            "prometheus, or point the console at yours with MONITORING_PROMETHEUS_URL (or Monitoring → Sources)."
        )
        return {}
    base = Path(data_dir) / "monitoring"
    base.mkdir(parents=True, exist_ok=True)
    rules = base / "console-rules.yml"
    rules.write_text(RULES)
    token_file = None
    if settings.METRICS_TOKEN:
        token_file = base / "metrics-token"
        token_file.touch(mode=0o600)
        token_file.write_text(settings.METRICS_TOKEN)
    am_address = urlsplit(settings.MONITORING_ALERTMANAGER_URL).netloc if alertmanager else ""
    config = base / "prometheus.yml"
    config.write_text(prometheus_config(env.get("CONSOLE_BASE_URL", settings.CONSOLE_BASE_URL), am_address, rules, token_file))
    q = shlex.quote
    commands = {
        "prometheus": f"{q(prometheus)} --config.file={q(str(config))} --storage.tsdb.path={q(str(base / 'prometheus-data'))} "
        f"--storage.tsdb.retention.time=7d --web.listen-address={q(urlsplit(settings.MONITORING_PROMETHEUS_URL).netloc)} --log.level=warn"
    }
    if alertmanager:
        am_config = base / "alertmanager.yml"
        am_config.write_text(ALERTMANAGER_CONFIG)
        commands["alertmanager"] = (
            f"{q(alertmanager)} --config.file={q(str(am_config))} --storage.path={q(str(base / 'alertmanager-data'))} "
            f"--web.listen-address={q(am_address)} --cluster.listen-address= --log.level=warn"
        )
    return commands
