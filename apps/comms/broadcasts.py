"""Deployments announce themselves: when an infrastructure deployment changes
status, `comms.broadcast_deployment` reports it to the targets of the routing
rules labelled type=deployment (nothing is sent when no such rule exists)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save, pre_save
from django.utils import timezone

from .models import RoutingRule

log = logging.getLogger(__name__)

# infrastructure status -> comms report status (None: not worth a message)
REPORTED = {"running": "progress", "paused": "progress", "succeeded": "succeeded", "failed": "failed",
            "rolled back": "rolled_back", "aborted": "cancelled"}  # fmt: skip
STARTING = ("queued", "pending approval")


def remember_status(sender, instance, **kwargs):
    instance._status_before = sender.objects.filter(pk=instance.pk).values_list("status", flat=True).first() if instance.pk else None


def broadcast_change(sender, instance, created, **kwargs):
    before = getattr(instance, "_status_before", None)
    report = REPORTED.get(instance.status)
    if report is None or before == instance.status:
        return
    if not any((rule.labels or {}).get("type") == "deployment" for rule in RoutingRule.objects.filter(enabled=True)):
        return
    if report == "progress" and before in STARTING:
        report = "started"
    params = {
        "deployment_id": str(instance.pk),
        "url": settings.CONSOLE_BASE_URL.rstrip("/") + instance.get_absolute_url(),
        "service": instance.service.name,
        "environment": instance.service.environment.name,
        "revision": f"r{instance.revision.number}",
        "strategy": instance.strategy,
        "status": report,
        "step": (instance.reason if instance.finished and instance.reason else instance.step_label)[:500],
        "reported_at": timezone.now().isoformat(),
    }
    transaction.on_commit(lambda: _queue(params))


def _queue(params: dict) -> None:
    from apps.accounts.actors import Actor
    from apps.core.errors import OpsError
    from apps.core.gateway import invoke

    try:
        invoke("comms.broadcast_deployment", Actor.system(), params, "system")
    except OpsError:  # a broadcast must never disturb the deployment it reports (the audit log has the failure)
        log.warning("comms: could not queue the broadcast of deployment %s", params["deployment_id"], exc_info=True)


def connect() -> None:
    pre_save.connect(remember_status, sender="infrastructure.Deployment", dispatch_uid="comms.deployment_status_before")
    post_save.connect(broadcast_change, sender="infrastructure.Deployment", dispatch_uid="comms.deployment_broadcast")
