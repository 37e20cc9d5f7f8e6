"""Dashboards: list, view (with the time-range picker and live mode), edit."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST

from apps.core.errors import OpsError
from apps.core.form_operations import submitted
from apps.core.web import actor_of, call, call_from_form, console_view, require_perm

from ..forms import DashboardForm, PanelFormSet
from ..models import Dashboard
from ..panels import panel_views
from ..refresh import topic_for
from .common import paginate

EDIT = "monitoring.change_dashboard"


@console_view
def dashboard_list(request):
    require_perm(request, "core.run_read_ops")
    page = paginate(request, Dashboard.objects.select_related("source").all())
    return render(request, "monitoring/dashboards.html", {"page": page, "can_edit": actor_of(request).has_perm(EDIT)})


def _end(request):
    """An absolute end from the picker (?end=2026-01-31T12:00); None means live."""
    try:
        value = parse_datetime(request.GET.get("end") or "")
    except ValueError:  # well formed but impossible, e.g. month 13
        value = None
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


@console_view
def dashboard_view(request, slug: str):
    require_perm(request, "core.run_read_ops")
    board = get_object_or_404(Dashboard.objects.select_related("source"), slug=slug)
    range_ = request.GET.get("range") if request.GET.get("range") in Dashboard.RANGES else board.default_range
    end = _end(request)
    context = {
        "board": board,
        "range": range_,
        "ranges": Dashboard.RANGES,
        "end": end,
        "live": end is None,
        "topic": topic_for(board.pk, range_),
        "can_edit": actor_of(request).has_perm(EDIT),
    }
    try:
        context["data"] = call(request, "monitoring.dashboard", {"dashboard": slug, "range": range_, "end": end}).result
        context["panels"] = panel_views(context["data"])
    except OpsError as exc:
        context["problem"] = exc.message
    return render(request, "monitoring/dashboard.html", context)


@console_view
def dashboard_edit(request, slug: str | None = None):
    require_perm(request, EDIT)
    board = get_object_or_404(Dashboard, slug=slug) if slug else Dashboard()
    form = DashboardForm(request.POST or None, instance=board)
    panels, status = PanelFormSet(request.POST or None, instance=board), 200
    if request.method == "POST":
        status = 422
        if form.is_valid() and panels.is_valid():
            params = {"id": board.pk, "data": submitted(request)}
            outcome, status = call_from_form(request, form, "monitoring.save_dashboard", params)
            if outcome:
                board = Dashboard.objects.get(pk=outcome.result.id)
                messages.success(request, f"Saved dashboard {board.title}.")
                return redirect(board)
    return render(
        request, "monitoring/dashboard_form.html", {"form": form, "panels": panels, "board": board if slug else None}, status=status
    )


@console_view
@require_POST
def dashboard_delete(request, slug: str):
    require_perm(request, EDIT)
    board = get_object_or_404(Dashboard, slug=slug)
    try:
        call(request, "monitoring.delete_dashboard", {"id": board.pk})
    except OpsError as exc:
        messages.error(request, exc.message)
        return redirect(board)
    messages.success(request, f"Deleted dashboard {board.title}.")
    return redirect("monitoring:dashboards")
