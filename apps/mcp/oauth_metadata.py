"""RFC 9728 protected resource metadata of /mcp: which authorization server issues its tokens
(the console itself, apps/accounts/oauth_server) and which scopes it knows. docs/oauth.md."""

from __future__ import annotations

from django.conf import settings
from oauth2_provider.views import OAuthProtectedResourceMetadataView

PROTECTED_RESOURCE_METADATA_URL = settings.CONSOLE_BASE_URL.rstrip("/") + "/.well-known/oauth-protected-resource/mcp"


class McpResourceMetadataView(OAuthProtectedResourceMetadataView):
    """The one protected resource: /mcp, at both the path form (/.well-known/oauth-protected-resource/mcp)
    and the root form of the well-known URL."""

    def get_resource(self, request):
        return settings.MCP_RESOURCE_URL

    def get_authorization_servers(self, request):
        return [settings.OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"]]
