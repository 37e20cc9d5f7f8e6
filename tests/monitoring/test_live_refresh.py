"""The shared live refresh: however many viewers, in however many web processes,
each panel is queried once per refresh interval and every viewer gets the same
fragment once. Counted with the real Prometheus' own request counter."""

import asyncio
import re
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing.websocket import WebsocketCommunicator
from websockets.asyncio.client import connect

from apps.audit.models import AuditEvent
from apps.monitoring import refresh
from apps.monitoring.models import Dashboard, Panel
from opsconsole.asgi import application

from . import peers

SLOT = re.compile(r'id="dashboard-status"[^>]*data-seq="(\d+)"')


@pytest.fixture
def live_board(source):
    board = Dashboard.objects.create(slug="live", title="Live", source=source, refresh_seconds=1, default_range="5m")
    Panel.objects.create(dashboard=board, position=0, title="Queue", query="demo_queue_depth", chart="stat")
    Panel.objects.create(dashboard=board, position=1, title="Ticks", query="rate(demo_ticks_total[5s])", chart="line")
    Panel.objects.create(dashboard=board, position=2, title="Requests", query="sum by (code) (rate(demo_requests_total[5s]))", chart="area")
    return board


def session_cookie(client, user) -> str:
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def receive_slots(ws, count: int) -> list[int]:
    slots = []
    while len(slots) < count:
        message = await asyncio.wait_for(ws.recv(), timeout=10)
        slots.append(int(SLOT.search(message).group(1)))
        assert 'id="panel-' in message and "stat level-none" in message
    return slots


@pytest.mark.django_db(transaction=True)
async def test_one_refresh_per_interval_for_every_viewer_in_two_processes(
    client, make_user, live_board, prometheus, console_server, metrics_console
):
    user = await sync_to_async(make_user)("viewer")
    cookie = await sync_to_async(session_cookie)(client, user)
    topic = f"dashboard.{live_board.pk}.5m"
    servers = [console_server, metrics_console]  # two web processes, as behind a load balancer
    queries_before = await sync_to_async(peers.api_requests)(prometheus.url)
    viewers = []
    for i in range(8):
        base = servers[i % 2]
        viewers.append(
            await connect(
                base.replace("http", "ws") + f"/ws/dashboards/{topic}/",
                origin=base,
                additional_headers={"Cookie": cookie},
                max_size=None,
                proxy=None,
            )
        )
    received = await asyncio.gather(*(receive_slots(ws, 3) for ws in viewers))
    for ws in viewers:
        await ws.close()
    # 3 panels, each queried once per refresh, for 8 viewers in 2 processes.
    refreshes = await sync_to_async(refreshes_querying_each_panel_once)(prometheus.url, queries_before)

    published = sorted(set().union(*received))
    for slots in received:
        # Each slot once, in order: a late refresh overtaken by the next one is dropped (apps.core.live).
        assert slots == sorted(set(slots)), f"a viewer got a slot twice or out of order: {slots}"
    # A loaded machine may skip a slot (a refresh longer than the interval), never add one: at most one
    # refresh per slot (wall-clock seconds: refresh_seconds=1) since the first one the viewers saw.
    assert len(published) <= refreshes <= int(time.time()) - published[0] + 1


def refreshes_querying_each_panel_once(prometheus_url: str, queries_before: int) -> int:
    """The refreshes audited, once they account for every Prometheus query (3 per refresh). The loops
    stop as their viewers leave, but a refresh already running finishes, however long a loaded machine
    takes: wait for that rather than sleep a guess."""
    audited = AuditEvent.objects.filter(operation="monitoring.dashboard", channel="system", target="live (5m)")

    def settled():
        refreshes, queries = audited.count(), peers.api_requests(prometheus_url) - queries_before
        return refreshes if refreshes and queries == 3 * refreshes else None

    return peers.wait_for(settled, timeout=60, what="Prometheus queries to equal 3 per audited refresh")


@pytest.mark.django_db(transaction=True)
async def test_viewers_keep_one_loop_per_process_and_it_stops_when_they_leave(client, make_user, live_board):
    user = await sync_to_async(make_user)("viewer")
    cookie = (await sync_to_async(session_cookie)(client, user)).encode()
    topic = f"dashboard.{live_board.pk}.5m"
    comms = [
        WebsocketCommunicator(application, f"/ws/dashboards/{topic}/", headers=[(b"cookie", cookie), (b"origin", b"http://localhost")])
        for _ in range(3)
    ]
    for comm in comms:
        assert (await comm.connect(timeout=5))[0]
    assert refresh._loops[topic].viewers == 3
    task = refresh._loops[topic].task
    fragments = [await comm.receive_from(timeout=10) for comm in comms]
    assert len({SLOT.search(f).group(1) for f in fragments}) == 1  # the same refresh reached all three
    for comm in comms:
        await comm.disconnect()
    assert topic not in refresh._loops
    await asyncio.wait([task], timeout=5)
    assert task.cancelled()


@pytest.mark.django_db(transaction=True)
async def test_dashboard_topics_are_checked(client, make_user, live_board):
    auditor = await sync_to_async(make_user)("auditor")
    cookie = (await sync_to_async(session_cookie)(client, auditor)).encode()
    headers = [(b"cookie", cookie), (b"origin", b"http://localhost")]
    denied = WebsocketCommunicator(application, f"/ws/dashboards/dashboard.{live_board.pk}.5m/", headers=headers)
    assert (await denied.connect(timeout=5)) == (False, 4403)
    other = WebsocketCommunicator(application, "/ws/dashboards/jobs/", headers=headers)
    assert (await other.connect(timeout=5)) == (False, 4404)


def test_lease_is_taken_once_per_slot(db):
    slot = int(time.time())
    assert refresh.claim("dashboard.999.5m", slot, 1) is True
    assert refresh.claim("dashboard.999.5m", slot, 1) is False
    assert refresh.claim("dashboard.999.5m", slot + 1, 1) is True
