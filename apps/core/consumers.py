from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from . import hooks
from .live import count_watcher, group_name, may_subscribe, snapshot
from .metrics import WEBSOCKET_CLIENTS


class LiveConsumer(AsyncWebsocketConsumer):
    """Subscribes an authenticated browser to one topic and forwards its fragments."""

    seq = None  # the newest stamped fragment sent (apps.core.live.publish)

    async def connect(self):
        self.topic = self.scope["url_route"]["kwargs"]["topic"]
        actor = await database_sync_to_async(hooks.actors().for_user)(self.scope.get("user"))
        allowed = actor.is_authenticated and await database_sync_to_async(may_subscribe)(actor, self.topic)
        if not allowed:
            await self.close(code=4403)
            return
        await count_watcher(self.topic, +1)  # first: feeds publish only while watched
        await self.channel_layer.group_add(group_name(self.topic), self.channel_name)
        await self.accept()
        self.counted = self.topic.split(".", 1)[0]
        WEBSOCKET_CLIENTS.labels(self.counted).inc()
        current = await database_sync_to_async(snapshot)(self.topic)
        if current:
            await self.send(text_data=current)

    async def disconnect(self, code):
        if getattr(self, "topic", None):
            await self.channel_layer.group_discard(group_name(self.topic), self.channel_name)
        if getattr(self, "counted", None):
            WEBSOCKET_CLIENTS.labels(self.counted).dec()
            self.counted = None
            await count_watcher(self.topic, -1)

    async def receive(self, text_data=None, bytes_data=None):
        """The page only listens; htmx may send form data, which is ignored."""

    async def live_html(self, event):
        seq = event.get("seq")
        if seq is not None:
            if self.seq is not None and seq <= self.seq:
                return  # overtaken by a newer state of the topic (publishers in several processes race)
            self.seq = seq
        await self.send(text_data=event["html"])
