"""A live socket outlives the request that opened it: when its user loses the right to watch the topic
(deactivated, the role taken away — here by another process, which no signal reports — or signed out),
the socket is closed within ACTOR_CACHE_SECONDS instead of streaming on. The bound is passed with the
actor cache's clock held by the test, never by waiting."""

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from apps.accounts import actors
from apps.core import consumers
from apps.core.gateway import invoke
from apps.core.live import watched

from .test_live_jobs import communicator_for

User = get_user_model()

CHANGES = {
    "deactivated": lambda client: User.objects.filter(pk=client.user.pk).update(is_active=False),
    "role taken away": lambda client: User.groups.through.objects.filter(user=client.user, group__name="auditor").delete(),
    "signed out": lambda client: client.logout(),
}


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.django_db(transaction=True)
async def test_an_open_socket_is_closed_once_its_user_may_no_longer_watch(change, client, make_user, actor_of, monkeypatch, settings):
    now = [1000.0]
    monkeypatch.setattr(actors, "clock", lambda: now[0])
    monkeypatch.setattr(consumers, "clock", lambda: now[0])
    client.user = await sync_to_async(make_user)("auditor", "viewer")
    await sync_to_async(client.force_login)(client.user)
    operator = await sync_to_async(actor_of)(await sync_to_async(make_user)("operator"))
    comm, connected, _ = await communicator_for(client, "activity")
    assert connected
    await sync_to_async(invoke)("core.health", operator, {"include_workers": False})
    assert "core.health" in await comm.receive_from(timeout=10)  # watching
    await sync_to_async(CHANGES[change])(client)
    now[0] += settings.ACTOR_CACHE_SECONDS
    await sync_to_async(invoke)("core.health", operator, {"include_workers": False})
    assert await comm.receive_output(timeout=10) == {"type": "websocket.close", "code": 4403}
    await comm.disconnect()  # what the ASGI server reports next: the watcher count goes down
    assert not await sync_to_async(watched)("activity")
