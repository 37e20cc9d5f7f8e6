"""The ASGI application: Django for HTTP, Channels for the live websockets.
(The MCP endpoint is mounted in front of Django too, its session manager
started by the lifespan protocol; see apps/mcp.) A clean stop anchors the
audit chain's head (docs/audit.md)."""

import gc
import os
from contextlib import asynccontextmanager

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")
# A web request's SQL statement may run this long (PostgreSQL); workers and commands have no limit.
os.environ.setdefault("DB_STATEMENT_TIMEOUT_MS", "30000")
# ...and once the database did not answer, the next 5 s of its accesses fail at once (settings.DB_DOWN_SECONDS).
os.environ.setdefault("DB_DOWN_SECONDS", "5")
# ...and its PostgreSQL connections stay open between requests, in psycopg's pool (settings.DB_POOL).
os.environ.setdefault("DB_POOL", "1")
django_asgi_app = get_asgi_application()

from asgiref.sync import sync_to_async  # noqa: E402
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import re_path  # noqa: E402
from starlette.applications import Starlette  # noqa: E402

from apps.audit.anchors import anchor_at_shutdown  # noqa: E402
from apps.mcp.asgi import session_manager  # noqa: E402

from .routing import http_urlpatterns, websocket_urlpatterns  # noqa: E402


@asynccontextmanager
async def lifespan(_app):
    async with session_manager.run():
        yield
    await sync_to_async(anchor_at_shutdown, thread_sensitive=False)()


application = ProtocolTypeRouter(
    {
        # A few raw endpoints that stream request bodies (routing.http_urlpatterns), then Django.
        "http": URLRouter([*http_urlpatterns, re_path(r"", django_asgi_app)]),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        # Starts (and stops) the MCP session manager with the server process; anchors the audit head at the stop.
        "lifespan": Starlette(lifespan=lifespan),
    }
)

# Everything loaded so far (Django, every app, the operation registry) lives as long as the process:
# frozen out of the collector's generations, it is not traversed again by each full collection, which
# the calls' short-lived objects trigger every few hundred requests (bench/mcp_calls.py: ~8 % of a
# tools/call's CPU). uvicorn's workers are spawned, not forked: each one imports and freezes this itself.
gc.collect()
gc.freeze()
