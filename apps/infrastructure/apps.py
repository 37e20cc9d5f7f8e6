import shutil

from django.apps import AppConfig


class InfrastructureConfig(AppConfig):
    name = "apps.infrastructure"
    verbose_name = "Infrastructure"
    nav = [(30, "Infrastructure", "infrastructure:overview", "core.run_read_ops")]
    subnav = [
        ("Services", "infrastructure:overview", "core.run_read_ops"),
        ("Deployments", "infrastructure:deployments", "core.run_read_ops"),
        ("Runbooks", "infrastructure:runbooks", "core.run_read_ops"),
        ("Build", "infrastructure:build", "core.run_write_ops"),
    ]
    role_permissions = {"admin": ["infrastructure.manage_environments", "infrastructure.manage_runbooks"]}

    def ready(self):
        from apps.approvals.hooks import on_request_not_run, on_request_recorded
        from apps.core.hooks import on_approval_links, on_job_ended, on_job_notice, on_job_queued
        from apps.core.live import register_topic

        from .deployments import deployment_link, deployment_snapshot, job_ended, job_notice, job_queued, request_not_run, request_recorded

        register_topic("deployment", "core.run_read_ops", snapshot=deployment_snapshot)
        register_topic("deployments", "core.run_read_ops")

        # Deployments are planned where requests and jobs change (no signals on other apps' models).
        on_request_recorded("infrastructure", request_recorded)
        on_request_not_run("infrastructure", request_not_run)
        on_job_queued("infrastructure", job_queued)
        on_job_notice("infrastructure", job_notice)
        on_job_ended("infrastructure", job_ended)
        on_approval_links("infrastructure", deployment_link)
        from apps.core.forms import on_field_choices

        from .models import Environment, Runbook

        on_field_choices("environment", lambda: list(Environment.objects.values_list("name", flat=True)))
        on_field_choices("runbook", lambda: list(Runbook.objects.values_list("name", flat=True)))
        # Suggested, not forced: alerts and broadcasts may name an app the console does not deploy.
        on_field_choices("service", service_names, strict=False)
        from apps.core.search import on_search

        from .search import deployments as find_deployments
        from .search import services

        on_search("service", "core.run_read_ops", services)
        on_search("deployment", "core.run_read_ops", find_deployments)

    def console_processes(self, data_dir, env) -> dict[str, str]:
        """A local Docker Engine API for the demo environment: podman's service, when podman is installed."""
        from django.conf import settings

        if settings.INFRA_DEMO_ENGINE_URL or not shutil.which("podman"):
            return {}
        return {"podman": f"podman system service --time=0 unix://{data_dir / 'podman.sock'}"}


def service_names() -> list[tuple[str, str]]:
    """(service, "in staging, production") for every service name the environments hold."""
    from .models import Service

    found: dict[str, list[str]] = {}
    for name, environment in Service.objects.order_by("name", "environment__name").values_list("name", "environment__name"):
        found.setdefault(name, []).append(environment)
    return [(name, f"in {', '.join(envs)}") for name, envs in found.items()]
