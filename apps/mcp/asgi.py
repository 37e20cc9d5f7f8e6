"""/mcp as a raw ASGI app in front of Django, and the lifespan that runs the SDK's
session manager.

Stateless: every POST is served on its own by whichever web process gets it,
so several processes behind a proxy need no shared session store (see docs/mcp.md).
"""

from __future__ import annotations

from django.conf import settings
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.middleware.authentication import AuthenticationMiddleware

from .auth import ApiTokenVerifier
from .oauth_metadata import PROTECTED_RESOURCE_METADATA_URL
from .server import server

session_manager = StreamableHTTPSessionManager(
    app=server,
    stateless=True,
    # SSE responses, so progress notifications can reach the caller while a job runs.
    json_response=False,
    security_settings=TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=settings.MCP_ALLOWED_HOSTS,
        allowed_origins=settings.MCP_ALLOWED_ORIGINS,
    ),
)

# A 401 names the protected resource metadata (RFC 9728), where an OAuth client learns which
# authorization server issues tokens for /mcp (docs/oauth.md); the backend refuses a token of another resource.
mcp_app = AuthenticationMiddleware(
    RequireAuthMiddleware(
        StreamableHTTPASGIApp(session_manager), required_scopes=[], resource_metadata_url=PROTECTED_RESOURCE_METADATA_URL
    ),
    backend=BearerAuthBackend(ApiTokenVerifier(), resource_server_url=settings.MCP_RESOURCE_URL),
)
