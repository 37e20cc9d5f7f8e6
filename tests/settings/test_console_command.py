"""README command 1, `bin/console`: seed_demo makes one user per role and each
app's demo data; runconsole supervises the embedded Redis, web, worker, beat,
the local Prometheus + Alertmanager and podman, and Ctrl-C stops them all."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import psutil
import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import authenticate
from django.core.management import call_command

from apps.accounts.roles import ROLES
from tests.monitoring.peers import wait_for
from tests.support import peers
from tests.support.processes import ROOT, Process, free_port

PASSWORD_LINE = re.compile(r"^\s+(\w+)\s+password: (\S+)$", re.MULTILINE)
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def printed_passwords(output: str) -> dict[str, str]:
    return dict(PASSWORD_LINE.findall(output))


def seed_demo(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    return {model._meta.label: model.objects.count() for model in apps.get_models()}


def assert_can_log_in(passwords: dict[str, str]) -> None:
    for role, password in passwords.items():
        user = authenticate(username=role, password=password)
        assert user is not None, f"{role} cannot log in with the printed password"
        assert [group.name for group in user.groups.all()] == [role]


# transaction=True: seed_demo's jobs run inline once their rows are committed, as under bin/console.
@pytest.mark.django_db(transaction=True)
def test_seed_demo_creates_a_user_per_role_and_every_apps_demo_data():
    from apps.approvals.models import ApprovalPolicy
    from apps.comms.models import Connector, EscalationPolicy, Incident, InhibitRule, RoutingRule, Target
    from apps.infrastructure.models import Environment, Runbook, Service
    from apps.monitoring.models import Dashboard, PrometheusSource
    from apps.security.models import Advisory, Finding, ScanRoot
    from apps.storage.models import Connection

    output = seed_demo()

    passwords = printed_passwords(output)
    assert sorted(passwords) == sorted(ROLES)
    assert all(output.count(password) == 1 for password in passwords.values())
    assert_can_log_in(passwords)
    # core
    assert ApprovalPolicy.objects.get(operation="*", scope="").quorum == 1
    # monitoring
    assert PrometheusSource.objects.get(name="default").base_url == settings.MONITORING_PROMETHEUS_URL
    assert set(Dashboard.objects.filter(builtin=True).values_list("slug", flat=True)) >= {"console", "targets"}
    assert all(dashboard.panels.exists() for dashboard in Dashboard.objects.filter(builtin=True))
    # infrastructure
    assert not Environment.objects.get(name="staging").protected
    assert Environment.objects.get(name="production").protected
    assert Service.objects.filter(name="web", environment__name__in=["staging", "production"]).count() == 2
    assert {"disk-usage", "uptime"} <= set(Runbook.objects.values_list("name", flat=True))
    # comms
    email = Connector.objects.get(name="email", kind=Connector.EMAIL)
    assert Target.objects.get(name="ops-email").connector == email
    assert RoutingRule.objects.get(name="default").is_default
    assert RoutingRule.objects.get(name="critical pages on-call").escalation_policy == EscalationPolicy.objects.get(name="default-oncall")
    assert InhibitRule.objects.filter(name="critical mutes warnings of the same service").exists()
    # security
    assert Advisory.objects.exists()
    assert (Path(ScanRoot.objects.get(name="demo").path) / "requirements.txt").is_file()
    assert Finding.objects.filter(severity__in=["critical", "high"]).exists()  # from real scans of the demo project
    assert Incident.objects.count() == 2
    # storage: a connection labelled as the demo's, to the S3 runconsole starts
    assert Connection.objects.get(name="demo-local-s3").endpoint_url == f"http://127.0.0.1:{settings.STORAGE_DEMO_S3_PORT}"


@pytest.mark.django_db(transaction=True)
def test_seed_demo_again_keeps_everything_and_reset_passwords_prints_new_ones():
    first = printed_passwords(seed_demo())
    counts = row_counts()

    again = seed_demo()
    assert printed_passwords(again) == {} and "password:" not in again
    assert "Demo users exist already" in again
    assert row_counts() == counts
    assert_can_log_in(first)

    reset = printed_passwords(seed_demo("--reset-passwords"))
    assert row_counts() == counts
    assert sorted(reset) == sorted(ROLES)
    assert all(reset[role] != first[role] for role in ROLES)
    assert_can_log_in(reset)
    assert all(authenticate(username=role, password=first[role]) is None for role in ROLES)


# --- runconsole, end to end --------------------------------------------------------------------------

# Settings of the test run that must not leak into a console started like `bin/console` does.
TEST_RUN_ENV = ("DATABASE_URL", "REDIS_URL", "REDIS_PREFIX", "CELERY_QUEUE", "OPSCONSOLE_ENV", "PROMETHEUS_MULTIPROC_DIR",
                "AUDIT_CHECKPOINT_PATH", "CONSOLE_BASE_URL", "INFRA_DEMO_ENGINE_URL", "MONITORING_LOCAL_PEERS")  # fmt: skip


def console_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in TEST_RUN_ENV}
    env.update(OPSCONSOLE_DATA_DIR=str(data_dir), DATABASE_URL=f"sqlite:///{data_dir / 'console.sqlite3'}", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def status_of(url: str, **kwargs) -> int:
    try:
        return httpx.get(url, timeout=2, **kwargs).status_code
    except httpx.HTTPError:
        return 0


def podman_answers(socket: Path) -> bool:
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(socket)), timeout=2) as podman:
            return podman.get("http://podman/_ping").text == "OK"
    except httpx.HTTPError:
        return False


def post_form(client: httpx.Client, path: str, data: dict[str, str]) -> httpx.Response:
    form = client.get(path)
    assert form.status_code == 200, path
    return client.post(path, data={"csrfmiddlewaretoken": CSRF_FIELD.search(form.text).group(1), **data})


def scrape_urls(prometheus_url: str) -> set[str]:
    targets = httpx.get(prometheus_url + "/api/v1/targets", timeout=2).json()["data"]["activeTargets"]
    return {target["scrapeUrl"] for target in targets}


def finished_page(client: httpx.Client, job_path: str) -> str | None:
    page = client.get(job_path).text
    return page if 'id="job-state">succeeded' in page else None


def still_running(processes: list[psutil.Process]) -> list[psutil.Process]:
    def running(process: psutil.Process) -> bool:
        try:
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    return [process for process in processes if running(process)]


@pytest.mark.peer
def test_runconsole_runs_every_process_together_and_ctrl_c_stops_them_all():
    for names in (("prometheus",), ("prometheus-alertmanager", "alertmanager"), ("podman",)):
        peers.require_binary(*names)
    port, prometheus, alertmanager, s3 = free_port(), free_port(), free_port(), free_port()
    base, prometheus_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{prometheus}"
    # Short path: the Redis and podman unix sockets live in it.
    data_dir = Path(tempfile.mkdtemp(prefix="opsconsole-cmd-"))
    env = console_env(data_dir, MONITORING_PROMETHEUS_URL=prometheus_url, MONITORING_ALERTMANAGER_URL=f"http://127.0.0.1:{alertmanager}",
                      STORAGE_DEMO_S3_PORT=str(s3))  # fmt: skip
    manage(env, "migrate", "--noinput")
    passwords = printed_passwords(manage(env, "seed_demo"))

    console = Process("runconsole", [sys.executable, "manage.py", "runconsole", "--port", str(port)], env)
    children: list[psutil.Process] = []
    try:
        console.wait_until(lambda: status_of(base + "/healthz") == 200, timeout=45, what="answering /healthz")
        assert httpx.get(base + "/healthz").json() == {"status": "ok", "database": "ok", "redis": "ok"}
        assert status_of(base + "/accounts/login/") == 200
        assert f"Ops console: {base}/" in console.output()

        with httpx.Client(base_url=base, follow_redirects=True, timeout=10) as client:
            home = post_form(client, "/accounts/login/", {"username": "operator", "password": passwords["operator"]})
            assert home.status_code == 200 and home.url.path == "/"
            # Web -> broker (embedded Redis) -> worker -> database, and back on the job page.
            started = post_form(client, "/operations/core.echo_job/", {"message": "through bin/console", "steps": "2", "step_seconds": "0"})
            assert re.fullmatch(r"/jobs/[0-9a-f-]+/", started.url.path), started.text[-2000:]
            job_page = wait_for(lambda: finished_page(client, started.url.path), timeout=30, what="the worker to run the job")
            assert "through bin/console" in job_page
            assert re.search(r'<span class="pill ok">up</span> \S+@', client.get("/health/").text), "no worker answered the health ping"

        assert wait_for(lambda: status_of(prometheus_url + "/-/ready") == 200, what="Prometheus ready")
        assert wait_for(lambda: f"{base}/metrics" in scrape_urls(prometheus_url), what="Prometheus to scrape the console")
        assert wait_for(lambda: status_of(f"http://127.0.0.1:{alertmanager}/-/ready") == 200, what="Alertmanager ready")
        assert wait_for(lambda: podman_answers(data_dir / "podman.sock"), what="podman's API")
        # The demo's S3 (moto) with its buckets, through the console's own storage page.
        with httpx.Client(base_url=base, follow_redirects=True, timeout=10) as client:
            post_form(client, "/accounts/login/", {"username": "viewer", "password": passwords["viewer"]})
            assert wait_for(lambda: "demo-assets" in client.get("/storage/c/demo-local-s3/").text, what="the demo buckets")
        assert "beat: Starting..." in console.output()

        children = psutil.Process(console.proc.pid).children(recursive=True)
        names = {child.name() for child in children}
        assert {"redis-server", "prometheus", "podman"} <= names, names

        # A child that dies is started again after a backoff; nothing else stops.
        redis = next(child for child in children if child.name() == "redis-server")
        redis.kill()
        assert wait_for(lambda: "redis will restart in 1 s" in console.output(), what="the supervisor to schedule a restart")
        assert wait_for(lambda: [c for c in psutil.Process(console.proc.pid).children(recursive=True)
                                 if c.name() == "redis-server" and c.pid != redis.pid], what="a new Redis")  # fmt: skip
        assert console.proc.poll() is None and "sending SIGTERM" not in console.output()
        children = psutil.Process(console.proc.pid).children(recursive=True)

        # Ctrl-C in a terminal: SIGINT to the foreground process group, led by the supervisor.
        os.killpg(console.proc.pid, signal.SIGINT)
        assert console.proc.wait(timeout=30) == 130  # honcho's exit status for SIGINT
        _, alive = psutil.wait_procs(still_running(children), timeout=5)
        assert not still_running(alive), [f"{p.pid} {p.name()}" for p in still_running(alive)]
        for name in ("redis", "web", "worker", "beat", "prometheus", "alertmanager", "podman", "s3"):
            assert f"{name} stopped" in console.output(), console.tail()
        # The clean stop signed and anchored the audit chain's head (docs/audit.md).
        anchors = [json.loads(line)["anchor"] for line in (data_dir / "audit-checkpoints.jsonl").read_text().splitlines()]
        assert "shutdown" in {anchor["reason"] for anchor in anchors}, anchors
    finally:
        console.stop()
        for child in still_running(children):
            child.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_on_postgresql_the_console_supervises_the_audit_appender_and_points_every_process_at_it(settings, tmp_path):
    from django.db import connection

    from apps.core.management.commands.runconsole import Command

    settings.DATA_DIR = tmp_path
    processes, env = Command().processes("127.0.0.1", free_port(), 1)
    if connection.vendor == "postgresql":
        assert processes["audit-appender"].endswith("manage.py audit_appender")
        assert env["AUDIT_APPENDER_SOCKET"] == str(tmp_path / "audit-appender.sock")
    else:  # SQLite appends in the caller's transaction: no appender
        assert "audit-appender" not in processes and "AUDIT_APPENDER_SOCKET" not in env
