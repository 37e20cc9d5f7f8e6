from __future__ import annotations

import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.approvals import plans
from apps.core import operations
from apps.core.errors import InvalidInput, OpsError
from apps.core.forms import add_invalid_input
from apps.core.gateway import check_permission
from apps.core.web import actor_of, call, call_from_form, console_view, done_or_pending, require_perm

from .analysis_charts import analysis_charts
from .deployments import with_served
from .forms import BuildForm, DeployForm, runbook_form
from .models import Deployment, Environment, Runbook, Service
from .plans import strategy_options
from .runbooks import ParamSpec
from .services.images import save_upload
from .spec_form import ServiceSpecForm, field_of


def _service(env: str, name: str) -> Service:
    return get_object_or_404(Service.objects.select_related("environment", "current_revision"), environment__name=env, name=name)


def _after_request(request, outcome, what: str):
    """Where to go after asking for a deployment-like operation: its deployment, approval or job page."""
    if outcome.status == "pending":
        messages.info(request, f"{what} needs approval: request #{outcome.approval.pk} waits for an approver.")
        found = Deployment.objects.filter(approval=outcome.approval).first()
        return redirect(found or outcome.approval)
    messages.success(request, f"{what}: started.")
    found = Deployment.objects.filter(job=outcome.job).first() if outcome.job else None
    return redirect(found or outcome.job)


@console_view
def overview(request):
    require_perm(request, "core.run_read_ops")
    environments = Environment.objects.prefetch_related("services__current_revision")
    recent = Deployment.objects.select_related("service__environment", "revision", "requested_by")[:10]
    return render(request, "infrastructure/overview.html", {"environments": environments, "recent": recent})


@console_view
def service_detail(request, env: str, name: str):
    require_perm(request, "core.run_read_ops")
    service = _service(env, name)
    containers, engine_error = [], None
    try:
        containers = call(request, "infrastructure.containers", {"environment": env, "service": name}).result.containers
    except OpsError as exc:
        engine_error = exc.message
    context = {
        "service": service,
        "spec_json": json.dumps(service.spec, indent=2, sort_keys=True),
        "containers": containers,
        "engine_error": engine_error,
        "revisions": with_served(service.revisions.select_related("created_by"))[:20],
        "deployments": service.deployments.select_related("revision", "requested_by")[:10],
        "form": DeployForm(),
        "can_write": actor_of(request).has_perm("core.run_write_ops"),
    }
    return render(request, "infrastructure/service.html", context)


@console_view
@require_POST
def deploy(request, env: str, name: str):
    form = DeployForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The deploy form is not valid.")
        return redirect("infrastructure:service", env=env, name=name)
    try:
        outcome = call(request, "infrastructure.deploy", form.params(env, name), reason=form.cleaned_data["reason"])
    except OpsError as exc:
        messages.error(request, exc.message)
        return redirect("infrastructure:service", env=env, name=name)
    return _after_request(request, outcome, "The deploy")


@console_view
@require_POST
def service_action(request, env: str, name: str, action: str):
    """Roll back to a revision, or restart (a rolling replacement): both become deployments."""
    params = {"environment": env, "service": name}
    if action == "rollback":
        params["revision"] = request.POST.get("revision") or None
    try:
        outcome = call(request, f"infrastructure.{action}", params)
    except OpsError as exc:
        messages.error(request, exc.message)
        return redirect("infrastructure:service", env=env, name=name)
    return _after_request(request, outcome, "The rollback" if action == "rollback" else "The restart")


@console_view
def deployment_list(request):
    require_perm(request, "core.run_read_ops")
    qs = Deployment.objects.select_related("service__environment", "revision", "requested_by")
    status = request.GET.get("status", "")
    if status in dict(Deployment.STATUSES):
        qs = qs.filter(status=status)
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    statuses = [s for s, _ in Deployment.STATUSES]
    return render(request, "infrastructure/deployments.html", {"page": page, "status": status, "statuses": statuses})


@console_view
def deployment_detail(request, pk: int):
    require_perm(request, "core.run_read_ops")
    deployment = get_object_or_404(
        Deployment.objects.select_related("service__environment", "revision", "previous_revision", "requested_by", "approval", "job"), pk=pk
    )
    options = strategy_options(deployment.strategy, deployment.parsed_options)
    steps = [
        {"label": step.describe(), "state": "done" if i < deployment.step else ("current" if i == deployment.step else "next")}
        for i, step in enumerate(deployment.parsed_options.steps)
    ] if deployment.strategy == "canary" else []  # fmt: skip
    previous = deployment.previous_revision.spec if deployment.previous_revision else {}
    context = {
        "deployment": deployment,
        "lines": deployment.log_lines.all()[:2000],
        # What this revision changes against the one it replaces, as the approval page shows a plan.
        "changes": plans.diff(previous, deployment.revision.spec),
        "options": {k: v for k, v in options.items() if k != "steps"},
        "steps": steps,
        "analyses": analysis_charts(deployment.analysis),
        "finished": deployment.finished,
    }
    return render(request, "infrastructure/deployment.html", context)


@console_view
@require_POST
def deployment_action(request, pk: int, action: str):
    params = {"deployment": pk, **({"reason": request.POST.get("reason", "")} if action == "abort" else {})}
    try:
        call(request, f"infrastructure.{action}", params)
    except OpsError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Abort requested: the previous revision is being restored." if action == "abort" else "Promoted.")
    return redirect("infrastructure:deployment", pk=pk)


@console_view
def container_logs(request, env: str, container: str):
    require_perm(request, "core.run_read_ops")
    tail = request.GET.get("tail", "200")
    tail = min(int(tail), 5000) if tail.isdigit() else 200
    if request.method == "POST":
        outcome = call(
            request, "infrastructure.follow_logs", {"environment": env, "container": container, "seconds": request.POST.get("seconds", 60)}
        )
        return redirect(outcome.job)
    logs = call(request, "infrastructure.container_logs", {"environment": env, "container": container, "tail": tail}).result
    return render(request, "infrastructure/logs.html", {"env": env, "container": container, "lines": logs.lines, "tail": tail})


@console_view
def runbook_list(request):
    require_perm(request, "core.run_read_ops")
    page = Paginator(Runbook.objects.filter(enabled=True), 25).get_page(request.GET.get("page"))
    return render(request, "infrastructure/runbooks.html", {"page": page})


@console_view
def runbook_run(request, name: str):
    require_perm(request, "core.request_risky_ops")
    runbook = get_object_or_404(Runbook, name=name, enabled=True)
    specs = [ParamSpec.model_validate(p) for p in runbook.parameters]
    form, status = runbook_form(specs, request.POST or None), 200
    if request.method == "POST" and form.is_valid():
        values = {k: v for k, v in form.cleaned_data.items() if v not in (None, "")}
        params = {"runbook": name, "params": values}
        outcome, status = call_from_form(
            request,
            form,
            "infrastructure.run_runbook",
            params,
            reason=request.POST.get("reason", ""),
            field_of=lambda k: k.removeprefix("params."),
        )
        if outcome and outcome.status == "pending":
            messages.info(request, f"Runbook {name} needs approval: request #{outcome.approval.pk} waits for an approver.")
            return redirect(outcome.approval)
        if outcome:
            return redirect(outcome.job)
    return render(request, "infrastructure/runbook.html", {"runbook": runbook, "form": form}, status=status)


@console_view
def build(request):
    require_perm(request, "core.run_write_ops")
    form = BuildForm(request.POST or None, request.FILES or None, environments=Environment.objects.values_list("name", flat=True))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        params = {"environment": data["environment"], "tag": data["tag"]}
        try:
            if data["context"]:
                params["upload"] = save_upload(data["context"].chunks())
            elif data["context_dir"]:
                params["context_dir"] = data["context_dir"]
            return redirect(call(request, "infrastructure.build_image", params).job)
        except InvalidInput as exc:
            add_invalid_input(form, exc.errors)
        except OpsError as exc:
            form.add_error(None, exc.message)
    return render(request, "infrastructure/build.html", {"form": form})


@console_view
def service_edit(request, env: str | None = None, name: str | None = None):
    """The typed spec editor of a service (a new one without env/name): it submits `infrastructure.save_service`."""
    check_permission(operations.get("infrastructure.save_service"), actor_of(request))
    service = _service(env, name) if name else None
    environments = Environment.objects.values_list("name", flat=True)
    form, status = ServiceSpecForm(service=service, environments=environments, initial=request.GET.dict()), 200
    if request.method == "POST" and "more_rows" in request.POST:
        # No script needed for more rows: the same values again, each list with new empty rows.
        data = {n: f.widget.value_from_datadict(request.POST, None, n) for n, f in form.fields.items() if not f.disabled}
        form = ServiceSpecForm(service=service, environments=environments, initial=data)
    elif request.method == "POST":
        form, status = ServiceSpecForm(request.POST, service=service, environments=environments), 422
        if form.is_valid():
            outcome, status = call_from_form(request, form, "infrastructure.save_service", form.params(),
                                             reason=request.POST.get("approval_reason", ""), field_of=field_of)  # fmt: skip
            if outcome:
                where = (form.cleaned_data["environment"], form.cleaned_data["name"])
                then = reverse("infrastructure:service", args=where)
                return done_or_pending(request, outcome, "{}/{} saved: the next deploy applies it.".format(*where), then)
    context = {"form": form, "service": service, "reason": request.POST.get("approval_reason", "")}
    return render(request, "infrastructure/service_edit.html", context, status=status)
