"""The audit recorder the gateway calls through core's hooks (this app provides it in its ready()):
each call's event appended to the chain, then shown at once to whoever watches the activity feed."""

from __future__ import annotations

from apps.core.live import publish_template

from .writer import record


def record_and_show(**fields):
    event = record(**fields)
    publish_template("activity", "audit/_event_live.html", {"events": [event]}, wait=False)
    return event
