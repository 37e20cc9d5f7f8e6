"""The engine stops answering in the middle of a deploy: the deployment fails
with the reason, the environment's breaker opens, the running revision keeps
serving, and whatever the deploy had started carries its labels, so the
console sees it once the engine is back and clears it on the next deploy."""

import threading
import time

import pytest

from apps.core.errors import PeerUnavailable
from apps.core.gateway import invoke, run_job
from apps.core.resilience import breaker_states
from apps.infrastructure.models import Deployment, Environment

from .conftest import RUN, Podman, deploy, endpoint, version_at, web_service

pytestmark = pytest.mark.peer


@pytest.fixture
def own_engine(tmp_path, podman, images, db):
    """A second podman service (same storage and images) that this test may stop."""
    engine = Podman(tmp_path)
    engine.start()
    env = Environment.objects.create(name=f"{RUN}-outage", engine_url=engine.url, router_image=images.router, timeout_seconds=5)
    yield engine, env
    engine.stop()
    podman.remove_matching(env.name + "-")


def stop_when_started(engine: Podman, deployment_id: int) -> threading.Thread:
    """Stop the engine as soon as the deployment's first container exists."""

    def watch():
        client = engine.client()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if client.containers.list(all=True, filters={"label": f"opsconsole.deployment={deployment_id}"}):
                engine.stop()
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def test_engine_stopped_mid_deploy(own_engine, operator, images, settings):
    settings.BREAKER_RESET_SECONDS = 1
    engine, env = own_engine
    web_service(operator, env, images, replicas=2, strategy="blue_green")
    assert deploy(operator, env).status == "succeeded"
    address = endpoint(operator, env)

    # The next revision starts slowly, so the deploy is waiting for it when the engine goes away.
    slow = ["sh", "-c", "sleep 3; exec httpd -f -p 8080 -h /www"]
    web_service(operator, env, images, version="v2", replicas=2, strategy="blue_green", command=slow,
                healthcheck={"kind": "http", "path": "/version", "interval_seconds": 0.1, "healthy_within_seconds": 20})  # fmt: skip
    outcome = invoke("infrastructure.deploy", operator, {"environment": env.name, "service": "web"})
    deployment = Deployment.objects.get(job=outcome.job)
    watcher = stop_when_started(engine, deployment.pk)
    run_job(str(outcome.job.pk))
    watcher.join(timeout=5)
    deployment.refresh_from_db()

    assert deployment.status == "failed"
    assert f"The Docker engine of {env.name} did not answer" in deployment.reason
    assert "the previous revision could not be restored" in deployment.reason
    assert breaker_states()[f"docker:{env.name}"]["failures"] >= 2
    # The console keeps looking (a page, an agent): the failures add up and the breaker opens ...
    # (how many the deploy itself counted depends on where the engine vanished: 2 to 4 of the 5)
    for _ in range(settings.BREAKER_FAIL_MAX):
        with pytest.raises(PeerUnavailable, match="did not answer"):
            invoke("infrastructure.containers", operator, {"environment": env.name})
        if breaker_states()[f"docker:{env.name}"]["state"] == "open":
            break
    assert breaker_states()[f"docker:{env.name}"]["state"] == "open"
    health = invoke("core.health", operator, {"include_workers": False}).result
    assert health.status == "degraded"
    assert any(b.name == f"docker:{env.name}" and b.state == "open" for b in health.breakers)
    # ... and from then on calls fail fast, saying so.
    with pytest.raises(PeerUnavailable, match="circuit breaker is open"):
        invoke("infrastructure.containers", operator, {"environment": env.name})
    assert version_at(address) == "v1", "the running containers keep serving while the engine's API is down"

    engine.start()
    time.sleep(1.1)  # the breaker lets a trial call through after BREAKER_RESET_SECONDS
    seen = invoke("infrastructure.containers", operator, {"environment": env.name, "service": "web"}).result.containers
    leftovers = [c for c in seen if c.deployment == deployment.pk]
    assert leftovers, "what the failed deploy created is visible from the engine"
    for container in leftovers:
        assert (container.service, container.role, container.revision, container.colour) == ("web", "replica", 2, deployment.colour)
        assert not container.in_traffic
    assert sorted(c.revision for c in seen if c.in_traffic) == [1, 1]
    assert breaker_states()[f"docker:{env.name}"]["state"] == "closed"

    web_service(operator, env, images, version="v2", replicas=2, strategy="blue_green")
    retry = deploy(operator, env)
    assert retry.status == "succeeded", retry.reason
    log = "\n".join(retry.log_lines.values_list("text", flat=True))
    assert f"removing {len(leftovers)} replica(s) not in traffic" in log
    assert version_at(address) == "v2"
    remaining = invoke("infrastructure.containers", operator, {"environment": env.name, "service": "web"}).result.containers
    assert {(c.role, c.revision) for c in remaining} == {("router", None), ("replica", 3)}
