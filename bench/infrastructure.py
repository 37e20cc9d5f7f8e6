"""Infrastructure figures on this machine (printed, never asserted), against a
real engine (podman's Docker API on a private socket):

- the router's cost: latency of a request through the service's router vs
  straight to a replica (new connection each time);
- a traffic switch: rewriting the router's upstreams until the new revision answers;
- a deploy v1 -> v2 of 2 replicas with each strategy, end to end through the gateway;
- a runbook's spawn overhead (prlimit + new session + output pump + tree check).

    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/infrastructure.py

Creates and drops its own test database; removes every container, network and image it made.
"""

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")
os.environ.setdefault("OPSCONSOLE_ENV", "test")
os.environ.setdefault("REDIS_PREFIX", f"bench-{os.getpid()}")
os.environ.setdefault("CELERY_QUEUE", f"bench-{os.getpid()}")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from opsconsole.celery import app as celery_app  # noqa: E402

celery_app.conf.task_always_eager = True  # jobs run here, in order, as a worker would run them


def latency(label: str, samples_ms: list[float]) -> None:
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    print(f"  {label:<44} p50 {statistics.median(ordered):7.2f} ms   p95 {p95:7.2f} ms   (n={len(ordered)})")


def main() -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from apps.accounts.actors import Actor
    from apps.core.gateway import invoke
    from apps.infrastructure.client import Engine
    from apps.infrastructure.models import Deployment, Environment
    from apps.infrastructure.router import router_name, write_upstreams
    from apps.infrastructure.runbooks import Limits, run_process
    from tests.infrastructure.conftest import HTTPD, RUN, Podman, _context, get_version

    socket_dir = Path(tempfile.mkdtemp(prefix="bench-podman-"))
    engine = Podman(socket_dir)
    engine.start()
    client = engine.client()
    busybox = Path("/bin/busybox").read_bytes()
    base = f"localhost/{RUN}-busybox:1"
    client.images.build(fileobj=_context({"bin/busybox": busybox}, "FROM scratch\nCOPY bin /bin\n"), custom_context=True, tag=base)
    tags = {}
    for version in ("v1", "v2"):
        tags[version] = f"localhost/{RUN}-web:{version}"
        ctx = _context({"www/version": f"{version}\n".encode()}, f"FROM {base}\nCOPY www /www\nCOPY tmp /tmp\n")
        client.images.build(fileobj=ctx, custom_context=True, tag=tags[version])

    user = get_user_model().objects.create_user("bench-operator", password="unused-password-123")
    user.groups.add(Group.objects.get(name="operator"))
    actor = Actor.for_user(user)
    env = Environment.objects.create(name=f"{RUN}-bench", engine_url=engine.url, router_image=base)
    try:
        print(f"engine: podman {client.version()['Version']} (API {client.version()['ApiVersion']})")
        print("deploy v1 -> v2, 2 replicas, through the gateway (start, health, route, retire):")
        for strategy in ("recreate", "rolling", "blue_green", "canary"):
            name = strategy.replace("_", "")
            invoke("infrastructure.save_service", actor, {
                "environment": env.name, "name": name, "image": tags["v1"], "command": HTTPD, "replicas": 2,
                "ports": [{"container": 8080}], "healthcheck": {"path": "/version", "interval_seconds": 0.05},
                "strategy": strategy,
                "strategy_options": {"keep_old_seconds": 0, "drain_seconds": 0.2, "stop_timeout": 2,
                                     "steps": [{"set_weight": 50}, {"set_weight": 100}]},
            })  # fmt: skip
            invoke("infrastructure.deploy", actor, {"environment": env.name, "service": name})
            started = time.perf_counter()
            job = invoke("infrastructure.deploy", actor, {"environment": env.name, "service": name, "image": tags["v2"]}).job
            elapsed = time.perf_counter() - started
            status = Deployment.objects.get(job=job).status
            print(f"  {strategy:<12} {elapsed:6.2f} s   ({status})")

        listed = invoke("infrastructure.services", actor, {"environment": env.name}).result.services
        address = next(s.endpoints[0] for s in listed if s.name == "recreate")
        service = env.services.get(name="recreate")
        with Engine(env) as api:
            replicas = api.containers(environment=env.name, service="recreate", role="replica")
            router = api.inspect(router_name(service))
            direct = f"{env.host_address}:{replicas[0].ports[8080]}"
            print("one GET /version on a new connection:")
            for label, target in (("straight to a replica", direct), ("through the router", address)):
                samples = []
                for _ in range(300):
                    begin = time.perf_counter()
                    get_version(target)
                    samples.append((time.perf_counter() - begin) * 1000)
                latency(label, samples)
            print("traffic switch (rewrite the upstreams -> the next connection reaches the other revision):")
            network = next(iter(replicas[0].ips))
            old = api.run(f"{env.name}-recreate-bench-v1", image=tags["v1"], command=HTTPD, env={}, labels={}, network=network, ports={})
            time.sleep(0.5)
            targets = [(old, "v1"), (replicas[0], "v2")]
            samples = []
            for i in range(20):
                target, wanted = targets[i % 2]
                begin = time.perf_counter()
                write_upstreams(api, router, [target.ips[network]])
                while get_version(address)[1] != wanted:
                    if time.perf_counter() - begin > 10:
                        raise RuntimeError(f"the router did not switch to {wanted} within 10 s")
                samples.append((time.perf_counter() - begin) * 1000)
            latency("put_archive + first request on the new one", samples)

        runs = []
        limits = Limits(timeout_seconds=10, output_cap_bytes=65536, cpu_seconds=5, memory_mb=256, max_processes=64, max_file_mb=8)
        with tempfile.TemporaryDirectory() as directory:
            for _ in range(50):
                begin = time.perf_counter()
                run_process(["/bin/true"], cwd=directory, env={}, limits=limits, on_line=lambda _line: None)
                runs.append((time.perf_counter() - begin) * 1000)
        print("runbook process:")
        latency("run /bin/true (prlimit, session, tree check)", runs)
    finally:
        engine.remove_matching(RUN)
        for tag in [*tags.values(), base]:
            client.images.remove(tag, force=True)
        engine.stop()
        shutil.rmtree(socket_dir, ignore_errors=True)


if __name__ == "__main__":
    setup_test_environment()
    if connection.vendor != "sqlite":  # never the test run's database, which may be in use
        connection.settings_dict["TEST"]["NAME"] = f"bench_{connection.settings_dict['NAME']}"
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        main()
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)
