from django.urls import path

from apps.core.consumers import LiveConsumer
from apps.monitoring.consumers import DashboardConsumer

websocket_urlpatterns = [
    path("ws/live/<str:topic>/", LiveConsumer.as_asgi()),
    path("ws/dashboards/<str:topic>/", DashboardConsumer.as_asgi()),
]
