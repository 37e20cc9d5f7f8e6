"""Demo data: a staging and a protected production environment on the local
engine (the podman service bin/console starts, or INFRA_DEMO_ENGINE_URL), a web
service in each, images built locally (no registry needed) and a few runbooks.
Idempotent."""

import shutil

from django.conf import settings

from .demo_images import BASE, HTTPD, WEB, TemporaryPodman, build_demo_images
from .models import Environment, Runbook, Service


def demo_engine_url() -> str:
    if settings.INFRA_DEMO_ENGINE_URL:
        return settings.INFRA_DEMO_ENGINE_URL
    if shutil.which("podman"):
        return f"unix://{settings.DATA_DIR / 'podman.sock'}"
    return "unix:///var/run/docker.sock"


def demo_spec() -> dict:
    return {
        "image": f"{WEB}:v1", "command": HTTPD, "replicas": 2, "ports": [{"container": 8080, "host": None}],
        "healthcheck": {"kind": "http", "path": "/cgi-bin/health", "interval_seconds": 0.5, "healthy_within_seconds": 20},
    }  # fmt: skip


def seed(stdout) -> None:
    prefix, url = settings.INFRA_DEMO_PREFIX, demo_engine_url()
    strategies = {"staging": ("rolling", {"drain_seconds": 0.5}), "production": ("canary", {"drain_seconds": 0.5})}
    for name, (strategy, options) in strategies.items():
        environment, created = Environment.objects.get_or_create(
            name=prefix + name, defaults={"engine_url": url, "router_image": BASE, "protected": name == "production", "quorum": 1}
        )
        if created:
            stdout.write(f"  infrastructure: environment {environment.name} -> {url}")
        Service.objects.get_or_create(
            environment=environment, name="web", defaults={"spec": demo_spec(), "strategy": strategy, "strategy_options": options}
        )
    _images(stdout, Environment.objects.get(name=prefix + "staging"))
    _runbooks()


def _images(stdout, environment: Environment) -> None:
    busybox = shutil.which("busybox")
    if not busybox:
        stdout.write("  infrastructure: busybox is not installed (bin/install-peers): no demo images, deploys will fail.")
        return
    try:
        with TemporaryPodman(environment.engine_url):
            tags = build_demo_images(environment, busybox)
    except Exception as exc:  # the console still starts without an engine: say why deploys will fail
        stdout.write(f"  infrastructure: demo images not built ({exc}); deploys will fail until the engine answers.")
        return
    stdout.write(f"  infrastructure: demo images built locally: {', '.join(tags)}")


def _runbooks() -> None:
    runbooks = {
        "disk-usage": (["df", "-h", "{path}"], [{"name": "path", "type": "path", "required": False, "default": "."}], False),
        "uptime": (["uptime"], [], False),
    }
    for binary, argv, params in (
        ("kubectl", ["kubectl", "rollout", "status", "deployment/{name}", "--namespace={namespace}"],
         [{"name": "name", "pattern": "[a-z0-9-]+"}, {"name": "namespace", "pattern": "[a-z0-9-]+", "default": "default"}]),
        ("terraform", ["terraform", "plan", "-input=false", "-no-color"], []),
    ):  # fmt: skip
        if shutil.which(binary):
            runbooks[f"{binary}-{argv[1]}"] = (argv, params, binary == "terraform")
    for name, (argv, params, risky) in runbooks.items():
        Runbook.objects.get_or_create(
            name=name, defaults={"argv": argv, "parameters": params, "working_dir": str(settings.DATA_DIR), "risky": risky}
        )
