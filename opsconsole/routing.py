from django.urls import path, re_path

from apps.core.consumers import LiveConsumer
from apps.mcp.asgi import mcp_app
from apps.monitoring.consumers import DashboardConsumer
from apps.storage.streaming import upload_stream

websocket_urlpatterns = [
    path("ws/live/<str:topic>/", LiveConsumer.as_asgi()),
    path("ws/dashboards/<str:topic>/", DashboardConsumer.as_asgi()),
]

# Raw ASGI endpoints served before Django (which reads a whole request body before a view runs).
http_urlpatterns = [
    path("storage/upload/stream/<str:ticket>/", upload_stream),
    re_path(r"^mcp/?$", mcp_app),  # the MCP endpoint (Streamable HTTP), see apps/mcp
]
