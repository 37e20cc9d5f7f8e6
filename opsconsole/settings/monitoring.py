"""Monitoring (apps/monitoring): the console's own metrics and the demo Prometheus source."""

import os
from pathlib import Path

from .environment import DATA_DIR, env, env_bool, env_list

# The console's own metrics: every process (web, worker, beat) writes its samples to
# files in one directory and /metrics adds them up (prometheus-client's multiprocess
# mode). prometheus-client reads this variable when it is first imported, so it is set
# here, before any app loads; `bin/console` empties the directory at start.
METRICS_DIR = Path(env("PROMETHEUS_MULTIPROC_DIR", str(DATA_DIR / "metrics")))
METRICS_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)
# Who may read /metrics: a bearer token, or a client address in these networks.
METRICS_TOKEN = env("METRICS_TOKEN")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
# The demo source "default" (bin/console starts a Prometheus and an Alertmanager on
# these ports when their binaries exist and MONITORING_LOCAL_PEERS is on).
MONITORING_PROMETHEUS_URL = env("MONITORING_PROMETHEUS_URL", "http://127.0.0.1:9090")
MONITORING_ALERTMANAGER_URL = env("MONITORING_ALERTMANAGER_URL", "http://127.0.0.1:9093")
MONITORING_LOCAL_PEERS = env_bool("MONITORING_LOCAL_PEERS", True)
MONITORING_MAX_QUERY_CHARS = int(env("MONITORING_MAX_QUERY_CHARS", "4000"))
MONITORING_MAX_RANGE_DAYS = int(env("MONITORING_MAX_RANGE_DAYS", "31"))
MONITORING_DASHBOARD_POINTS = int(env("MONITORING_DASHBOARD_POINTS", "240"))
