from django.contrib import admin
from django.urls import include, path

from apps.core.views import healthz
from apps.mcp.oauth_metadata import McpResourceMetadataView
from apps.monitoring.metrics import exposition

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", exposition, name="metrics"),
    path("", include("apps.console.urls")),
    path("", include("apps.core.urls")),
    path("accounts/", include("apps.accounts.urls")),
    path("audit/", include("apps.audit.urls")),
    path("approvals/", include("apps.approvals.urls")),
    path("monitoring/", include("apps.monitoring.urls")),
    path("security/", include("apps.security.urls")),
    path("infrastructure/", include("apps.infrastructure.urls")),
    path("storage/", include("apps.storage.urls")),
    path("comms/", include("apps.comms.urls")),
    path("agents/", include("apps.mcp.urls")),
    path("django-admin/", admin.site.urls),
    # OAuth 2.1 for MCP clients (docs/oauth.md): the authorization server, and /mcp's RFC 9728 metadata.
    path("", include("apps.accounts.oauth_urls")),
    path(".well-known/oauth-protected-resource/mcp", McpResourceMetadataView.as_view(), name="mcp-resource-metadata"),
    path(".well-known/oauth-protected-resource", McpResourceMetadataView.as_view()),
]

handler404 = "apps.core.errors_views.not_found"
handler500 = "apps.core.errors_views.server_error"
handler403 = "apps.core.errors_views.forbidden"
handler400 = "apps.core.errors_views.bad_request"
