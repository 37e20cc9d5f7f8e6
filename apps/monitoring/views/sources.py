"""Prometheus sources: admins add, edit and remove them (credentials stored encrypted)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.core.resilience import forget_breaker
from apps.core.web import console_view, require_perm

from ..forms import SourceForm
from ..models import PrometheusSource
from .common import paginate
from .dashboards import audit

MANAGE = "core.manage_connectors"


@console_view
def source_list(request):
    require_perm(request, MANAGE)
    return render(request, "monitoring/sources.html", {"page": paginate(request, PrometheusSource.objects.all())})


@console_view
def source_edit(request, pk: int | None = None):
    require_perm(request, MANAGE)
    source = get_object_or_404(PrometheusSource, pk=pk) if pk else PrometheusSource()
    old_breakers = source.breaker_names if pk else ()
    form = SourceForm(request.POST or None, instance=source)
    if request.method == "POST" and form.is_valid():
        changed = form.changed_fields
        source = form.save()
        for name in (*old_breakers, *source.breaker_names):
            forget_breaker(name)  # new settings deserve a fresh start
        audit(request, "monitoring.source_save", source.name, {"changed": changed, "new": pk is None})
        messages.success(request, f"Saved source {source.name}.")
        return redirect("monitoring:sources")
    status = 422 if request.method == "POST" else 200
    return render(request, "monitoring/source_form.html", {"form": form, "source": source if pk else None}, status=status)


@console_view
@require_POST
def source_delete(request, pk: int):
    require_perm(request, MANAGE)
    source = get_object_or_404(PrometheusSource, pk=pk)
    source.delete()
    audit(request, "monitoring.source_delete", source.name)
    messages.success(request, f"Deleted source {source.name}.")
    return redirect("monitoring:sources")
