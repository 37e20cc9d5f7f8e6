"""Real peer: podman serving the Docker Engine API on a socket of this run.

Test images are built locally (no registry): busybox-static in a FROM scratch
context, plus a /www/version file; replicas run busybox httpd and tests ask
over HTTP which version answers. Every container, network and image carries
this run's prefix and is removed at the end (other runs share podman's storage).
"""

from __future__ import annotations

import http.client
import itertools
import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest

from apps.core.gateway import invoke, run_job
from apps.core.models import Job
from apps.infrastructure.demo_images import busybox_context
from apps.infrastructure.models import Deployment, Environment
from tests.support import peers
from tests.support.processes import Process

RUN = f"oc{os.getpid() % 100000}{secrets.token_hex(2)}"
_envs = itertools.count(1)
HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]
FLAKY_HEALTH = """#!/bin/sh
n=$(cat /tmp/probes 2>/dev/null || echo 0); n=$((n+1)); echo $n > /tmp/probes
if [ $n -le 2 ]; then printf 'Content-Type: text/plain\\r\\n\\r\\nok\\n'; else printf 'Status: 500 Failing\\r\\n\\r\\nfailing\\n'; fi
"""


class Podman:
    """`podman system service` on a private socket; restartable (to simulate an engine outage)."""

    def __init__(self, directory: Path):
        self.socket = directory / "podman.sock"
        self.url = f"unix://{self.socket}"
        self.process: Process | None = None

    def start(self) -> None:
        self.socket.unlink(missing_ok=True)
        self.process = Process("podman", ["podman", "system", "service", "--time=0", self.url])
        self.process.wait_until(self._answers, timeout=30, what="answering")

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return self.client().ping()
        except docker.errors.DockerException:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.url, timeout=30, version="1.41")

    def remove_matching(self, prefix: str) -> None:
        client = self.client()
        for container in client.containers.list(all=True, filters={"name": prefix}):
            if container.name.startswith(prefix):
                container.remove(force=True)
        for network in client.networks.list():
            if network.name.startswith(prefix):
                network.remove()


@pytest.fixture(scope="session")
def podman(tmp_path_factory):
    peers.require_binary("podman")
    peers.require(bool(shutil.which("catatonit") or Path("/usr/libexec/podman/catatonit").exists()), "catatonit (podman's --init)")
    engine = Podman(tmp_path_factory.mktemp("podman"))
    engine.start()
    yield engine
    if engine.process.proc.poll() is not None:
        engine.start()
    engine.remove_matching(RUN)
    client = engine.client()
    for image in client.images.list():
        for tag in image.tags:
            if f"/{RUN}-" in tag or tag.startswith(f"{RUN}-"):
                client.images.remove(tag, force=True)
    engine.stop()


@dataclass
class Images:
    base: str
    # version -> tag; "broken" serves no /version (404); "flaky" is v2 whose /cgi-bin/health
    # answers 200 to its first two probes and 500 after (deterministic, whatever the timing).
    web: dict[str, str] = field(default_factory=dict)

    @property
    def router(self) -> str:
        return self.base


@pytest.fixture(scope="session")
def images(podman) -> Images:
    busybox = peers.require_binary("busybox")
    client = podman.client()
    base = f"localhost/{RUN}-busybox:1"
    client.images.build(fileobj=busybox_context({"bin/busybox": Path(busybox).read_bytes()}, "FROM scratch\nCOPY bin /bin\n"),
                        custom_context=True, tag=base, rm=True)  # fmt: skip
    result = Images(base=base)
    for version in ("v1", "v2", "v3", "broken", "flaky"):
        files = {"www/index.html": b"no version here\n"} if version == "broken" else {"www/version": f"{version}\n".encode()}
        if version == "flaky":
            files = {"www/version": b"v2\n", "www/cgi-bin/health": FLAKY_HEALTH.encode()}
        dockerfile = f"FROM {base}\nCOPY www /www\nCOPY tmp /tmp\n"
        tag = f"localhost/{RUN}-web:{version}"
        client.images.build(fileobj=busybox_context(files, dockerfile), custom_context=True, tag=tag, rm=True)
        result.web[version] = tag
    return result


@pytest.fixture
def environment(podman, images, db):
    env = Environment.objects.create(name=f"{RUN}-{next(_envs)}", engine_url=podman.url, router_image=images.router, timeout_seconds=15)
    yield env
    if podman.process.proc.poll() is not None:
        podman.start()
    podman.remove_matching(env.name + "-")


@pytest.fixture
def admin(make_user, actor_of):
    return actor_of(make_user("admin"))


@pytest.fixture
def operator(make_user, actor_of):
    return actor_of(make_user("operator"))


def web_service(actor, env: Environment, images: Images, /, *, name="web", version="v1", replicas=2, strategy="rolling", **extra):
    """Define a busybox httpd service through the gateway, as a person would."""
    params = {
        "environment": env.name,
        "name": name,
        "image": images.web[version],
        "command": HTTPD,
        "ports": [{"container": 8080}],
        "replicas": replicas,
        "healthcheck": {"kind": "http", "path": "/version", "interval_seconds": 0.1, "healthy_within_seconds": 8},
        "strategy": strategy,
        "strategy_options": {"drain_seconds": 0.3, "stop_timeout": 2, "keep_old_seconds": 0.5, **extra.pop("options", {})},
        **extra,
    }
    return invoke("infrastructure.save_service", actor, params).result


def deploy(actor, env: Environment, service="web", operation="infrastructure.deploy", **params) -> Deployment:
    """Request a deploy through the gateway and run its job here, on the worker's code path — or, when
    the run's Celery worker (started by an earlier test) claimed it first, wait for that worker to end it."""
    outcome = invoke(operation, actor, {"environment": env.name, "service": service, **params})
    assert outcome.status == "queued", outcome
    run_job(str(outcome.job.pk))
    deadline = time.monotonic() + 300
    while Job.objects.get(pk=outcome.job.pk).status not in Job.FINISHED:
        assert time.monotonic() < deadline, "the deploy's job did not finish within 300 s"
        time.sleep(0.2)
    return Deployment.objects.select_related("revision").get(job=outcome.job)


def run_resume_job() -> None:
    """Run the job a promote or an abort of a paused deployment queued."""
    run_job(str(Job.objects.filter(operation="infrastructure.resume_deployment").latest("created_at").pk))


def labelled(podman: Podman, env: Environment, **labels) -> list:
    """Containers of an environment on the engine, by opsconsole.* labels."""
    filters = {"label": [f"opsconsole.environment={env.name}"] + [f"opsconsole.{k}={v}" for k, v in labels.items()]}
    return podman.client().containers.list(all=True, filters=filters)


def running_revisions(podman: Podman, env: Environment) -> list[str]:
    """Revision numbers of the running replicas, sorted: ["1", "1"]."""
    return sorted(c.labels["opsconsole.revision"] for c in labelled(podman, env, role="replica") if c.status == "running")


def endpoint(actor, env: Environment, service="web") -> str:
    found = invoke("infrastructure.services", actor, {"environment": env.name}).result.services
    return next(s.endpoints[0] for s in found if s.name == service)


def get_version(address: str) -> tuple[int, str]:
    """(status, body) of GET /version on a new connection."""
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("GET", "/version")
        response = connection.getresponse()
        return response.status, response.read().decode().strip()
    finally:
        connection.close()


def version_at(address: str) -> str:
    """Which version answers at host:port."""
    status, body = get_version(address)
    assert status == 200, (status, body)
    return body


def versions(address: str, n: int = 30) -> dict[str, int]:
    seen: dict[str, int] = {}
    for _ in range(n):
        v = version_at(address)
        seen[v] = seen.get(v, 0) + 1
    return seen


class Poller(threading.Thread):
    """Asks the service which version answers, continuously, counting failures."""

    def __init__(self, address: str):
        super().__init__(daemon=True)
        self.address, self.seen, self.failures = address, [], []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                status, body = get_version(self.address)
                if status == 200:
                    self.seen.append(body)
                else:
                    self.failures.append(f"HTTP {status}")
            except OSError as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.01)

    def __enter__(self) -> Poller:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self._halt.set()
        self.join(timeout=10)

    def transitions(self) -> list[str]:
        """The versions seen, with repeats collapsed: ["v1", "v2"] for a clean switch."""
        return [v for i, v in enumerate(self.seen) if i == 0 or self.seen[i - 1] != v]


@dataclass
class Demo:
    """What `seed_demo` made: environment names and the printed demo passwords."""

    staging: str
    production: str
    passwords: dict[str, str]
    output: str


@pytest.fixture
def demo(podman, settings, transactional_db) -> Demo:
    """The demo of bin/console, seeded by `seed_demo` on this run's podman (images built locally)."""
    import re
    from io import StringIO

    from django.core.management import call_command

    # Names of this run beside other runs on the engine; the documentation's screenshots show the demo's own.
    prefix = "" if os.environ.get("OPSCONSOLE_SCREENSHOTS") else f"{RUN}-"
    settings.INFRA_DEMO_ENGINE_URL, settings.INFRA_DEMO_PREFIX = podman.url, prefix
    out = StringIO()
    call_command("seed_demo", stdout=out)
    passwords = dict(re.findall(r"^\s+(\w+)\s+password: (\S+)$", out.getvalue(), re.MULTILINE))
    yield Demo(f"{prefix}staging", f"{prefix}production", passwords, out.getvalue())
    podman.remove_matching(f"{prefix}staging-")
    podman.remove_matching(f"{prefix}production-")


def log_in(browser, console_server: str, username: str, password: str, **context_options):
    """A new browser context logged in through the login form, confirming dialogs."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **context_options)
    page = context.new_page()
    page.set_default_timeout(15000)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{console_server}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.click("main button[type=submit]")
    page.wait_for_url(console_server + "/")
    return page
