"""Demo data: a local environment (the podman service bin/console starts, or
INFRA_DEMO_ENGINE_URL), a web service and a few runbooks. Idempotent."""

import shutil

from django.conf import settings

from .models import Environment, Runbook, Service


def demo_engine_url() -> str:
    if settings.INFRA_DEMO_ENGINE_URL:
        return settings.INFRA_DEMO_ENGINE_URL
    if shutil.which("podman"):
        return f"unix://{settings.DATA_DIR / 'podman.sock'}"
    return "unix:///var/run/docker.sock"


def seed(stdout) -> None:
    env, created = Environment.objects.get_or_create(name="local", defaults={"engine_url": demo_engine_url()})
    Environment.objects.get_or_create(name="production", defaults={"engine_url": demo_engine_url(), "protected": True, "quorum": 1})
    for environment in Environment.objects.filter(name__in=["local", "production"]):
        Service.objects.get_or_create(
            environment=environment,
            name="web",
            defaults={
                "spec": {"image": "busybox:1.36", "command": ["httpd", "-f", "-p", "8080", "-h", "/etc"], "replicas": 2,
                         "ports": [{"container": 8080, "host": None}], "healthcheck": {"kind": "http", "path": "/hostname"}},
                "strategy": "blue_green",
                "strategy_options": {"keep_old_seconds": 10},
            },
        )  # fmt: skip
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
    if created:
        stdout.write(f"  infrastructure: environment local -> {env.engine_url}")
