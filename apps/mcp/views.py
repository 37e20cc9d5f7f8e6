from __future__ import annotations

import json
from itertools import groupby

from django.conf import settings
from django.http import Http404
from django.shortcuts import render

from apps.core.web import actor_of, console_view

from .tools import tools_for


def _kind(tool) -> str:
    if tool.annotations.read_only_hint:
        return "read"
    return "risky" if tool.annotations.destructive_hint else "write"


def _by_app(actor) -> dict[str, list]:
    tools = sorted(tools_for(actor), key=lambda tool: tool.name)
    return {app: list(found) for app, found in groupby(tools, key=lambda tool: tool.name.split("_", 1)[0])}


@console_view
def agents(request):
    """How to connect an MCP client, and a summary of the tools your roles give it (one line per app)."""
    url = settings.CONSOLE_BASE_URL.rstrip("/") + "/mcp"
    config = {"mcpServers": {"opsconsole": {"type": "http", "url": url, "headers": {"Authorization": "Bearer opc_…"}}}}
    summary = [
        {"app": app, "count": len(found), **{kind: sum(_kind(t) == kind for t in found) for kind in ("read", "write", "risky")}}
        for app, found in _by_app(actor_of(request)).items()
    ]
    return render(request, "mcp/agents.html", {"url": url, "config": json.dumps(config, indent=2, ensure_ascii=False), "summary": summary})


@console_view
def agent_tools(request, app: str):
    """The tools of one app your roles give an agent."""
    tools = _by_app(actor_of(request)).get(app)
    if tools is None:
        raise Http404(f"No app {app!r} has tools your roles give an agent.")
    return render(request, "mcp/agent_tools.html", {"app": app, "tools": [(t, _kind(t)) for t in tools]})
