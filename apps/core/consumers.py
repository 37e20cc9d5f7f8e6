import time
from importlib import import_module

from channels.auth import get_user
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from . import hooks
from .live import count_watcher, group_name, may_subscribe, snapshot
from .metrics import WEBSOCKET_CLIENTS

# The time source of the sockets' re-checks of their user (a test holds it).
clock = time.monotonic


class LiveConsumer(AsyncWebsocketConsumer):
    """Subscribes an authenticated browser to one topic and forwards its fragments."""

    seq = None  # the newest stamped fragment sent (apps.core.live.publish)
    refused = False  # closed because its user may no longer watch

    async def connect(self):
        self.topic = self.scope["url_route"]["kwargs"]["topic"]
        self.checked_at = clock()
        if not await self._may_watch(self.scope.get("user")):
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

    async def _may_watch(self, user) -> bool:
        actor = await database_sync_to_async(hooks.actors().for_user)(user)
        return actor.is_authenticated and await database_sync_to_async(may_subscribe)(actor, self.topic)

    async def _still_may_watch(self) -> bool:
        """The socket outlives the request that opened it: at most once per ACTOR_CACHE_SECONDS, its session's
        user is read again (signed out, deactivated, password changed: none) and their roles with it."""
        if clock() - self.checked_at < settings.ACTOR_CACHE_SECONDS:
            return True
        self.checked_at = clock()
        session = import_module(settings.SESSION_ENGINE).SessionStore(self.scope["session"].session_key)
        return await self._may_watch(await get_user({"session": session}))

    async def live_html(self, event):
        if self.refused:
            return  # closed: fragments still in flight until the server reports the disconnect
        if not await self._still_may_watch():
            self.refused = True
            await self.close(code=4403)
            return
        seq = event.get("seq")
        if seq is not None:
            if self.seq is not None and seq <= self.seq:
                return  # overtaken by a newer state of the topic (publishers in several processes race)
            self.seq = seq
        await self.send(text_data=event["html"])
