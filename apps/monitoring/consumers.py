from apps.core.consumers import LiveConsumer

from . import refresh


class DashboardConsumer(LiveConsumer):
    """A live viewer of one dashboard over one range (topic `dashboard.<id>.<range>`):
    the core consumer's authorisation and fragments, plus keeping the shared refresh running."""

    watching = False

    async def connect(self):
        if refresh.parse_topic(self.scope["url_route"]["kwargs"]["topic"]) is None:
            await self.close(code=4404)
            return
        await super().connect()

    async def accept(self, subprotocol=None, headers=None):
        await super().accept(subprotocol, headers)
        self.watching = True
        await refresh.watch(self.topic)

    async def disconnect(self, code):
        await super().disconnect(code)
        if self.watching:
            self.watching = False
            await refresh.unwatch(self.topic)
