"""Pages over a source's live data: overview (health), query explorer, targets,
alerts, silences, rules. Each calls its operation through the gateway."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.core.errors import OpsError
from apps.core.web import actor_of, call, console_view, require_perm

from ..charts import format_value, line_chart, series_name
from ..forms import SilenceForm
from ..models import Dashboard
from ..promql import parse_duration, selector
from ..services.dashboards import PanelData
from .common import paginate, query_string, source_context


def _attempt(request, name: str, params: dict):
    """(result, problem): a failure is shown on the page as a message, not raised."""
    try:
        return call(request, name, params).result, ""
    except OpsError as exc:
        return None, exc.message


def graph_url(source: str, query: str) -> str:
    return reverse("monitoring:query") + "?" + urlencode({"source": source, "query": query, "mode": "range"})


@console_view
def overview(request):
    require_perm(request, "core.run_read_ops")
    context = source_context(request)
    context["health"], context["problem"] = _attempt(request, "monitoring.health", {"source": context["source"]})
    if context["health"]:
        # Label values go into PromQL through the selector helper only.
        context["jobs"] = [(job, graph_url(context["source"], selector("up", job=job.job))) for job in context["health"].jobs]
    context["dashboards"] = Dashboard.objects.all()
    return render(request, "monitoring/overview.html", context)


@console_view
def query(request):
    require_perm(request, "core.run_read_ops")
    context = source_context(request)
    text = request.GET.get("query", "")
    mode = "range" if request.GET.get("mode") == "range" else "instant"
    range_ = request.GET.get("range") if request.GET.get("range") in Dashboard.RANGES else "1h"
    context.update(query=text, mode=mode, range=range_, ranges=Dashboard.RANGES)
    status = 200
    if text:
        try:
            if mode == "range":
                end = timezone.now()
                params = {"source": context["source"], "query": text, "start": end - parse_duration(range_), "end": end}
                result = call(request, "monitoring.query_range", params).result
                panel = PanelData(id=0, title=text, chart="line", unit="", warning=None, critical=None, legend=[], series=result.series)
                context.update(result=result, chart=line_chart(panel, result.start, result.end))
            else:
                result = call(request, "monitoring.query", {"source": context["source"], "query": text}).result
                context.update(result=result, rows=[(series_name(s.labels), format_value(s.value)) for s in result.series])
        except OpsError as exc:
            context["problem"], status = exc.message, exc.status_code
    return render(request, "monitoring/query.html", context, status=status)


@console_view
def targets(request):
    require_perm(request, "core.run_read_ops")
    context = source_context(request)
    health = request.GET.get("health") if request.GET.get("health") in ("up", "down", "unknown") else "any"
    state = request.GET.get("state") if request.GET.get("state") in ("dropped", "any") else "active"
    context.update(health=health, state=state, filters=query_string(request))
    result, context["problem"] = _attempt(request, "monitoring.targets", {"source": context["source"], "health": health, "state": state})
    if result:
        context["result"] = result
        context["page"] = paginate(request, result.targets)
        context["rows"] = [(t, graph_url(context["source"], selector("up", job=t.job, instance=t.instance))) for t in context["page"]]
    return render(request, "monitoring/targets.html", context)


@console_view
def alerts(request):
    require_perm(request, "core.run_read_ops")
    context = source_context(request)
    state = request.GET.get("state", "any")
    origin = request.GET.get("origin", "both")
    params = {"source": context["source"], "state": state, "origin": origin, "severity": request.GET.get("severity") or None}
    result, context["problem"] = _attempt(request, "monitoring.alerts", params)
    context.update(state=state, origin=origin, severity=params["severity"] or "", filters=query_string(request))
    if result:
        context["result"] = result
        context["page"] = paginate(request, result.alerts)
        context["rows"] = [(a, silence_prefill(a.labels)) for a in context["page"]]
    context["states"] = ["any", "firing", "pending", "active", "suppressed", "unprocessed"]
    context["can_silence"] = actor_of(request).has_perm("core.run_write_ops")
    return render(request, "monitoring/alerts.html", context)


def silence_prefill(labels: dict[str, str]) -> str:
    wanted = {k: v for k, v in labels.items() if k in ("alertname", "instance", "job", "severity")} or labels
    return "\n".join(f"{k}={v}" for k, v in wanted.items())


@console_view
def silences(request):
    require_perm(request, "core.run_read_ops")
    context = source_context(request)
    state = request.GET.get("state") if request.GET.get("state") in ("any", "pending", "expired") else "active"
    result, context["problem"] = _attempt(request, "monitoring.silences", {"source": context["source"], "state": state})
    if result:
        context["page"] = paginate(request, result.silences)
    can_write = actor_of(request).has_perm("core.run_write_ops")
    form = None
    if can_write:
        form = SilenceForm(request.POST or None, initial={"matchers": request.GET.get("matchers", "")})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            params = {
                "source": context["source"],
                "matchers": data["matchers"],
                "duration_minutes": data["duration_minutes"],
                "comment": data["comment"],
            }
            try:
                created = call(request, "monitoring.silence_create", params).result
            except OpsError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"Silence {created.silence_id} is active until {created.ends_at:%Y-%m-%d %H:%M} UTC.")
                return redirect(reverse("monitoring:silences") + "?" + urlencode({"source": context["source"]}))
    context.update(state=state, form=form, filters=query_string(request))
    return render(request, "monitoring/silences.html", context, status=422 if form is not None and form.errors else 200)


@console_view
@require_POST
def silence_expire(request, silence_id: str):
    source = request.POST.get("source", "default")
    try:
        call(request, "monitoring.silence_expire", {"source": source, "silence_id": silence_id})
    except OpsError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Silence {silence_id} expired: its alerts notify again.")
    return redirect(reverse("monitoring:silences") + "?" + urlencode({"source": source}))


@console_view
def rules(request):
    require_perm(request, "core.run_read_ops")
    context = source_context(request)
    context["result"], context["problem"] = _attempt(request, "monitoring.rules", {"source": context["source"]})
    if context["result"]:
        context["page"] = paginate(request, context["result"].groups)
    context["filters"] = query_string(request)
    return render(request, "monitoring/rules.html", context)
