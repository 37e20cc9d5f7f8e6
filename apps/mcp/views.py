from __future__ import annotations

import json

from django.conf import settings
from django.shortcuts import render

from apps.core.web import actor_of, console_view

from .tools import tools_for


@console_view
def agents(request):
    """How to connect an MCP client, and the tools your roles give it."""
    url = settings.CONSOLE_BASE_URL.rstrip("/") + "/mcp"
    config = {"mcpServers": {"opsconsole": {"type": "http", "url": url, "headers": {"Authorization": "Bearer opc_…"}}}}
    return render(
        request,
        "mcp/agents.html",
        {"url": url, "config": json.dumps(config, indent=2, ensure_ascii=False), "tools": tools_for(actor_of(request))},
    )
