"""Prometheus sources: admins add, edit and remove them (credentials stored encrypted)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.core.errors import OpsError
from apps.core.form_operations import submitted
from apps.core.web import call, call_from_form, console_view, require_perm

from ..forms import SourceForm
from ..models import PrometheusSource
from .common import paginate

MANAGE = "core.manage_connectors"


@console_view
def source_list(request):
    require_perm(request, MANAGE)
    return render(request, "monitoring/sources.html", {"page": paginate(request, PrometheusSource.objects.all())})


@console_view
def source_edit(request, pk: int | None = None):
    require_perm(request, MANAGE)
    source = get_object_or_404(PrometheusSource, pk=pk) if pk else PrometheusSource()
    form, status = SourceForm(request.POST or None, instance=source), 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            outcome, status = call_from_form(request, form, "monitoring.save_source", {"id": pk, "data": submitted(request)})
            if outcome:
                messages.success(request, f"Saved source {outcome.result.name}.")
                return redirect("monitoring:sources")
    return render(request, "monitoring/source_form.html", {"form": form, "source": source if pk else None}, status=status)


@console_view
@require_POST
def source_delete(request, pk: int):
    require_perm(request, MANAGE)
    try:
        outcome = call(request, "monitoring.delete_source", {"id": pk})
    except OpsError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Deleted source {outcome.result.name}.")
    return redirect("monitoring:sources")
