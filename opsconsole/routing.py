from django.urls import path

from apps.core.consumers import LiveConsumer
from apps.storage.streaming import upload_stream

websocket_urlpatterns = [
    path("ws/live/<str:topic>/", LiveConsumer.as_asgi()),
]

# Raw ASGI endpoints served before Django (which reads a whole request body before a view runs).
http_urlpatterns = [
    path("storage/upload/stream/<str:ticket>/", upload_stream),
]
