"""Read-only panels other apps add to an audit event's page (the approval flow's plan and
votes): the audit app sits below them and imports none of them; they register here."""

from __future__ import annotations

from collections.abc import Callable

from django.template.loader import render_to_string

# Each: (event, actor) -> (template name, context) or None when it has nothing to show for the event.
EVENT_PANELS: list[Callable] = []


def register_event_panel(panel: Callable) -> None:
    if panel not in EVENT_PANELS:
        EVENT_PANELS.append(panel)


def render_panels(request, event, actor) -> list[str]:
    rendered = []
    for panel in EVENT_PANELS:
        found = panel(event, actor)
        if found:
            template, context = found
            rendered.append(render_to_string(template, context, request))
    return rendered
