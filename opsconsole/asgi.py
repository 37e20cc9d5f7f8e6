"""The ASGI application: Django for HTTP, Channels for the live websockets.
(The MCP endpoint is mounted in front of Django too, its session manager
started by the lifespan protocol; see apps/mcp.)"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")
# A web request's SQL statement may run this long (PostgreSQL); workers and commands have no limit.
os.environ.setdefault("DB_STATEMENT_TIMEOUT_MS", "30000")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import re_path  # noqa: E402

from apps.mcp.asgi import lifespan_app  # noqa: E402

from .routing import http_urlpatterns, websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # A few raw endpoints that stream request bodies (routing.http_urlpatterns), then Django.
        "http": URLRouter([*http_urlpatterns, re_path(r"", django_asgi_app)]),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        # Starts (and stops) the MCP session manager with the server process.
        "lifespan": lifespan_app,
    }
)
