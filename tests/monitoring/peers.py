"""Real Prometheus, Alertmanager and a test exporter on loopback ports (free ones unless
given), in temporary directories, and a reverse proxy to put in front of one; used by the
tests' fixtures and by bench/dashboards.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from tests.support.processes import Process, free_port, port_open
from tests.support.waiting import wait_for  # noqa: F401 (peers.wait_for, used by the monitoring tests)

HERE = Path(__file__).resolve().parent

RULES = """groups:
  - name: demo
    rules:
      - alert: DemoServiceDown
        expr: demo_service_up == 0
        labels: {severity: critical}
        annotations: {summary: "service {{ $labels.service }} is down"}
      - alert: DemoQueueBacklog
        expr: demo_queue_depth > 5
        labels: {severity: warning}
        annotations: {summary: "the queue holds {{ $value }} items"}
      - alert: DemoSlowBurn
        expr: demo_queue_depth > 0
        for: 1h
        labels: {severity: info}
      - record: job:demo_requests:rate1m
        expr: sum by (job) (rate(demo_requests_total[1m]))
"""

ALERTMANAGER = """route:
  receiver: blackhole
  group_wait: 0s
  group_interval: 1s
receivers:
  - name: blackhole
"""


def http_get(url: str, headers: dict | None = None, timeout: float = 5) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def clean_env() -> dict[str, str]:
    """Peers (and the exporter) must not write into the console's metric files."""
    return {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}


@dataclass
class Peer:
    process: Process
    url: str
    port: int
    workdir: Path
    argv: list[str] = field(default_factory=list)

    def stop(self) -> None:
        self.process.stop()

    def start_again(self) -> None:
        """Restart on the same port and data (a Prometheus that comes back)."""
        self.process = Process(self.process.name, self.argv, clean_env())
        self.process.wait_until(lambda: http_get(self.url + "/-/ready")[0] == 200, timeout=30, what="ready")

    def shutdown(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_exporter(port: int = 0) -> Peer:
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="opsconsole-exporter-"))
    argv = [sys.executable, str(HERE / "exporter.py"), str(port)]
    proc = Process("exporter", argv, clean_env())
    proc.wait_until(lambda: port_open(port), what="listening")
    return Peer(proc, f"http://127.0.0.1:{port}", port, workdir, argv)


def start_alertmanager(binary: str, config: str = ALERTMANAGER) -> Peer:
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="opsconsole-alertmanager-"))
    (workdir / "alertmanager.yml").write_text(config)
    argv = [
        binary,
        f"--config.file={workdir / 'alertmanager.yml'}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    url = f"http://127.0.0.1:{port}"
    proc = Process("alertmanager", argv, clean_env())
    proc.wait_until(lambda: http_get(url + "/-/ready")[0] == 200, timeout=30, what="ready")
    return Peer(proc, url, port, workdir, argv)


def _bcrypt(password: str) -> str:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # libxcrypt's bcrypt: what Prometheus' web config wants

    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))


def start_prometheus(
    binary: str,
    scrape: dict[str, dict],
    alertmanager: str = "",
    basic_auth: tuple[str, str] | None = None,
    rules: str = RULES,
    port: int = 0,
    history: str = "",
) -> Peer:
    """`scrape`: job name -> {"target": "host:port", "bearer": token (optional)}. With
    `basic_auth` (user, password) Prometheus' own web server requires it. `history`: samples
    in OpenMetrics text, written as blocks (promtool) before it starts, so that ranges
    reaching back before its start have data."""
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="opsconsole-prometheus-"))
    if history:
        (workdir / "history.om").write_text(history)
        promtool = str(Path(binary).with_name("promtool"))
        argv = [promtool, "tsdb", "create-blocks-from", "openmetrics", str(workdir / "history.om"), str(workdir / "data")]
        subprocess.run(argv, check=True, capture_output=True)
    (workdir / "rules.yml").write_text(rules)
    jobs = []
    for job, spec in {"prometheus": {"target": f"127.0.0.1:{port}"}, **scrape}.items():
        entry = {"job_name": job, "static_configs": [{"targets": [spec["target"]]}]}
        if spec.get("bearer"):
            entry["authorization"] = {"credentials": spec["bearer"]}
        if basic_auth and job == "prometheus":
            entry["basic_auth"] = {"username": basic_auth[0], "password": basic_auth[1]}
        jobs.append(entry)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(workdir / "rules.yml")],
        "scrape_configs": jobs,
    }
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager.removeprefix("http://")]}]}]}
    (workdir / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    argv = [
        binary,
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--rules.alert.resend-delay=1s",
        "--log.level=warn",
    ]
    if basic_auth:
        (workdir / "web.yml").write_text(json.dumps({"basic_auth_users": {basic_auth[0]: _bcrypt(basic_auth[1])}}))
        argv.append(f"--web.config.file={workdir / 'web.yml'}")
    url = f"http://127.0.0.1:{port}"
    proc = Process("prometheus", argv, clean_env())
    proc.wait_until(lambda: port_open(port), timeout=30, what="listening")
    return Peer(proc, url, port, workdir, argv)


def instant(url: str, query: str) -> list[dict]:
    status, body = http_get(url + "/api/v1/query?" + urllib.parse.urlencode({"query": query}))
    return json.loads(body)["data"]["result"] if status == 200 else []


def api_requests(prometheus_url: str) -> int:
    """How many query API calls this Prometheus has answered (its own counter)."""
    _, body = http_get(prometheus_url + "/metrics")
    total = 0
    for line in body.decode().splitlines():
        match = re.match(r'prometheus_http_requests_total\{code="\d+",handler="/api/v1/(query|query_range)"\} (\S+)', line)
        if match:
            total += int(float(match.group(2)))
    return total


class Gate(BaseHTTPRequestHandler):
    """A reverse proxy in front of a peer at `upstream` (what teams put in front of Prometheus).
    A subclass decides in `admit` what happens to each request before it is forwarded."""

    upstream = ""

    def admit(self) -> bool:
        """False: refused, and already answered here."""
        return True

    def forward(self):
        if not self.admit():
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = httpx.request(self.command, self.upstream + self.path, content=body,
                               headers={"Content-Type": self.headers.get("Content-Type", "")})  # fmt: skip
        self.reply(answer)

    def reply(self, answer: httpx.Response) -> None:
        self.send_response(answer.status_code)
        self.send_header("Content-Type", answer.headers.get("content-type", "application/json"))
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = forward

    def log_message(self, *args):
        pass


def serve_gate(gate: type[Gate]) -> tuple[str, ThreadingHTTPServer]:
    """The gate on a free loopback port, in threads of this process: (its URL, the server to shut down)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), gate)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server
