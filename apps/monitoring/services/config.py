"""Prometheus sources and dashboards as the setup forms edit them, written through the gateway."""

from __future__ import annotations

from apps.core.form_operations import form_operations
from apps.core.resilience import forget_breaker

from ..forms import DashboardForm, PanelFormSet, SourceForm
from ..models import Dashboard, PrometheusSource


def _source_saved(source: PrometheusSource, old: PrometheusSource | None) -> None:
    for name in {*source.breaker_names, *(old.breaker_names if old else ())}:
        forget_breaker(name)  # new settings deserve a fresh start


form_operations("monitoring.source", PrometheusSource, SourceForm, permission="core.manage_connectors", saved=_source_saved)
form_operations("monitoring.dashboard", Dashboard, DashboardForm, permission="monitoring.change_dashboard", formset=PanelFormSet)
