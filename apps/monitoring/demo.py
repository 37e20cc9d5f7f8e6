from django.conf import settings

from . import builtin
from .models import Dashboard, Panel, PrometheusSource


def seed(stdout) -> None:
    """The source "default" (the local Prometheus bin/console starts, or MONITORING_PROMETHEUS_URL) and the built-in dashboards."""
    source, created = PrometheusSource.objects.get_or_create(
        name="default",
        defaults={"base_url": settings.MONITORING_PROMETHEUS_URL, "alertmanager_url": settings.MONITORING_ALERTMANAGER_URL},
    )
    if created:
        stdout.write(f"  monitoring: source default -> {source.base_url} (edit it under Monitoring → Sources).")
    builtin.install(Dashboard, Panel)
