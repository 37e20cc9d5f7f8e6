"""Incident timelines and their live updates: the one place that writes an entry
and pushes it (with the incident's row and status) to the watching browsers."""

from __future__ import annotations

from django.utils import timezone

from apps.core.live import publish_template

from .models import Incident, TimelineEntry


def add(incident: Incident, kind: str, text: str, actor: str = "", at=None) -> TimelineEntry:
    entry = TimelineEntry.objects.create(incident=incident, kind=kind, text=text[:4000], actor=actor[:150], at=at or timezone.now())
    publish(incident, entry)
    return entry


def publish(incident: Incident, entry: TimelineEntry | None = None) -> None:
    context = {"incident": incident, "entry": entry}
    publish_template(f"incident.{incident.pk}", "comms/_incident_live.html", context)
    publish_template("incidents", "comms/_incident_row_live.html", context)
