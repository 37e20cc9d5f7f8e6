from __future__ import annotations

import hmac
import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.accounts.actors import Actor
from apps.core import gateway
from apps.core.errors import InvalidInput, OpsError
from apps.core.form_operations import submitted
from apps.core.middleware import client_ip
from apps.core.web import actor_of, call, call_from_form, console_view, require_perm

from .forms import PreferenceForm
from .models import Connector, Delivery, DeliveryPreference, Incident

INCIDENT_ACTIONS = {"ack": "comms.ack_incident", "resolve": "comms.resolve_incident", "escalate": "comms.escalate_incident"}


@console_view
def incidents(request):
    require_perm(request, "core.run_read_ops")
    status = request.GET.get("status", "active")
    qs = Incident.objects.select_related("assignee").annotate(alert_count=Count("alerts")).order_by("-opened_at")
    if status == "active":
        qs = qs.exclude(status=Incident.RESOLVED)
    elif status in dict(Incident.STATUSES):
        qs = qs.filter(status=status)
    counts = dict(Incident.objects.values_list("status").annotate(n=Count("id")))
    tabs = [("active", counts.get("open", 0) + counts.get("acknowledged", 0))] + [(s, counts.get(s, 0)) for s, _ in Incident.STATUSES]
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    return render(request, "comms/incidents.html", {"page": page, "status": status, "tabs": tabs})


@console_view
def incident(request, pk: int):
    require_perm(request, "core.run_read_ops")
    obj = get_object_or_404(Incident.objects.select_related("assignee", "policy"), pk=pk)
    context = {
        "incident": obj,
        "entries": obj.timeline.all()[:500],
        "alerts": obj.alerts.all()[:100],
        "deliveries": obj.deliveries.all()[:50],
        "can_respond": actor_of(request).has_perm("core.run_write_ops"),
        "users": get_user_model().objects.filter(is_active=True).order_by("username").values_list("username", flat=True)[:200],
    }
    return render(request, "comms/incident.html", context)


@console_view
@require_POST
def incident_action(request, pk: int, action: str):
    comment = request.POST.get("comment", "")
    try:
        if action == "comment":
            assign = request.POST.get("assign_to")
            call(request, "comms.comment_incident", {"incident_id": pk, "text": comment, "assign_to": assign if assign != "-" else None})
        elif action in INCIDENT_ACTIONS:
            key = "reason" if action == "escalate" else "comment"
            call(request, INCIDENT_ACTIONS[action], {"incident_id": pk, key: comment})
        else:
            messages.error(request, f"Unknown action {action}.")
    except OpsError as exc:
        messages.error(request, exc.message)
    if request.htmx:  # the page updates itself from the live timeline
        return render(request, "comms/_messages.html", status=200)
    return redirect("comms:incident", pk=pk)


@console_view
def deliveries(request):
    require_perm(request, "core.run_read_ops")
    qs = Delivery.objects.select_related("incident")
    status, kind = request.GET.get("status", ""), request.GET.get("kind", "")
    if status in dict(Delivery.STATUSES):
        qs = qs.filter(status=status)
    if kind in dict(Connector.KINDS):
        qs = qs.filter(kind=kind)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "status": status,
        "kind": kind,
        "statuses": [s for s, _ in Delivery.STATUSES],
        "kinds": [k for k, _ in Connector.KINDS],
        "query": "&".join(f"{k}={v}" for k, v in (("status", status), ("kind", kind)) if v),
        "can_resend": actor_of(request).has_perm("core.run_write_ops"),
    }
    return render(request, "comms/deliveries.html", context)


@console_view
@require_POST
def resend(request, pk):
    try:
        call(request, "comms.resend_delivery", {"delivery_id": str(pk)})
        messages.success(request, "Queued again.")
    except OpsError as exc:
        messages.error(request, exc.message)
    return redirect(request.POST.get("next") or "comms:deliveries")


@console_view
def preview(request):
    require_perm(request, "core.run_read_ops")
    result, error = None, ""
    params = {k: request.GET.get(k) or None for k in ("severity", "priority")}
    params["service"] = request.GET.get("service", "")
    if "labels" in request.GET:
        try:
            labels = json.loads(request.GET.get("labels") or "{}")
            result = call(request, "comms.preview_route", {**params, "labels": labels}).result
        except json.JSONDecodeError:
            error = 'Labels must be a JSON object, e.g. {"team": "payments"}.'
        except InvalidInput as exc:
            error = exc.message
    return render(request, "comms/preview.html", {"result": result, "error": error, "values": request.GET})


@console_view
def preference(request):
    instance = DeliveryPreference.objects.filter(user=request.user).first()
    form, status = PreferenceForm(request.POST or None, instance=instance), 200
    if request.method == "POST":
        if request.POST.get("delete") and instance:
            call(request, "comms.delete_delivery_preference", {"id": instance.pk})
            messages.success(request, "Your notifications now stay in the console only.")
            return redirect("comms:preference")
        status = 422
        if form.is_valid():
            params = {"id": instance.pk if instance else None, "data": submitted(request)}
            outcome, status = call_from_form(request, form, "comms.save_delivery_preference", params)
            if outcome:
                pref = DeliveryPreference.objects.get(pk=outcome.result.id)
                messages.success(request, f"Your notifications will also go to {pref.recipient} via {pref.connector.name}.")
                return redirect("comms:preference")
    return render(request, "comms/preference.html", {"form": form, "instance": instance}, status=status)


@csrf_exempt
@require_POST
def alertmanager_webhook(request):
    """Alertmanager's webhook_config posts here with `Authorization: Bearer <COMMS_ALERTMANAGER_TOKEN>`."""
    expected = settings.COMMS_ALERTMANAGER_TOKEN
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        return JsonResponse({"error": "a valid bearer token is required"}, status=401)
    try:
        payload = json.loads(request.body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return JsonResponse({"error": "the body is not JSON"}, status=400)
    try:
        outcome = gateway.invoke(
            "comms.ingest_alertmanager", Actor.system(), payload, "web",
            client_ip=client_ip(request), request_id=getattr(request, "request_id", ""),
        )  # fmt: skip
    except InvalidInput as exc:
        return JsonResponse({"error": exc.message, "fields": exc.errors}, status=422)
    except OpsError as exc:
        # Alertmanager retries on 5xx: a failure on our side is worth another try.
        return JsonResponse({"error": exc.message}, status=503)
    return JsonResponse(outcome.result.model_dump())
