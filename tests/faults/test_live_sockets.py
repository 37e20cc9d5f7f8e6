"""Live pages stay live: an idle websocket outlives many blocking reads of the
channel layer (short ones, configured, instead of long sleeps), and a fragment
older than one already sent never reaches the browser, whatever order the
publishers' messages arrive in."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
import redis
from asgiref.sync import sync_to_async
from channels.testing.websocket import WebsocketCommunicator
from channels_redis.core import RedisChannelLayer as StockLayer
from django.conf import settings
from websockets.asyncio.client import connect

from apps.core.channel_layer import RedisChannelLayer
from apps.core.live import publish
from apps.monitoring import refresh
from apps.monitoring.models import Dashboard
from opsconsole.asgi import application
from tests.support.processes import start_console
from tests.support.waiting import wait_for

from .redis_peer import RedisServer
from .test_redis_faults import run_health

BLOCK = 1  # seconds each blocking read waits on the server (production: 2)
SEQ = re.compile(r'data-seq="(\d+)"')


def layer(cls, **options):
    return cls(hosts=[settings.REDIS_URL], prefix=f"{settings.REDIS_PREFIX}:faults-live", **options)


async def test_a_socket_timeout_within_the_blocking_read_kills_an_idle_receiver():
    """The failure, reproduced: what redis-py 8's 5 s default did to channels_redis' 5 s read, made certain."""
    stock = layer(StockLayer)
    stock.hosts = [{**host, "socket_timeout": BLOCK / 2} for host in stock.hosts]
    stock.brpop_timeout = BLOCK
    channel = await stock.new_channel()
    with pytest.raises(redis.TimeoutError):
        await stock.receive(channel)
    await stock.flush()


async def _logged(caplog, text: str) -> None:
    for _ in range(6000):  # up to 60 s on a busy machine; usually within one blocking read
        if text in caplog.text:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never logged: {text}")


async def test_one_late_answer_is_read_again_and_a_hung_redis_still_surfaces(caplog):
    server = RedisServer()
    try:
        # Each read gives Redis its block plus 3 s: time enough for the test to resume it after the first read's timeout.
        console = RedisChannelLayer(hosts=[server.url], prefix="faults-late", block_seconds=0.5, socket_timeout=3)
        channel = await console.new_channel()
        receiver = asyncio.ensure_future(console.receive(channel))
        server.pause()  # nothing answers: the read in flight (or the next) times out
        await _logged(caplog, "answered a blocking read late")
        server.resume()  # the second read finds Redis again: the receiver lives on
        await console.send(channel, {"type": "hello"})
        assert (await asyncio.wait_for(receiver, timeout=60))["type"] == "hello"

        receiver = asyncio.ensure_future(console.receive(channel))
        caplog.clear()
        server.pause()  # and stays stopped: the second late answer is the receiver's end
        await _logged(caplog, "answered a blocking read late")
        with pytest.raises(redis.TimeoutError):
            await asyncio.wait_for(receiver, timeout=60)
    finally:
        server.shutdown()


async def test_the_console_layer_waits_idle_through_many_blocking_reads():
    console = layer(RedisChannelLayer, block_seconds=BLOCK, socket_timeout=2)
    assert console.hosts[0]["socket_timeout"] > console.brpop_timeout
    channel = await console.new_channel()
    receiver = asyncio.ensure_future(console.receive(channel))
    done, _ = await asyncio.wait([receiver], timeout=4 * BLOCK)  # four blocking reads end with nothing
    assert not done
    await console.send(channel, {"type": "hello"})
    assert (await asyncio.wait_for(receiver, timeout=30))["type"] == "hello"
    await console.flush()


@pytest.mark.django_db(transaction=True)
async def test_an_idle_websocket_on_a_real_server_stays_open(client, make_user):
    user = await sync_to_async(make_user)("operator", "auditor")
    await sync_to_async(client.force_login)(user)
    session = client.cookies["sessionid"].value
    proc, url = await sync_to_async(start_console)(CHANNEL_LAYER_BLOCK_SECONDS=str(BLOCK))
    try:
        socket = await connect(
            url.replace("http", "ws") + "/ws/live/activity/", origin=url, additional_headers={"Cookie": f"sessionid={session}"}, proxy=None
        )
        await asyncio.sleep(4 * BLOCK)  # idle through four blocking reads of the server's channel layer
        with httpx.Client(base_url=url, cookies={"sessionid": session}, timeout=60) as http:
            assert (await sync_to_async(run_health)(http)).status_code == 200
        row = await asyncio.wait_for(socket.recv(), timeout=30)  # still open, and still fed
        assert "core.health" in row
        await socket.close()
    finally:
        await sync_to_async(proc.stop)()
    assert "TimeoutError" not in proc.output()


async def communicator(client, path):
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    comm = WebsocketCommunicator(application, path, headers=[(b"cookie", cookie), (b"origin", b"http://localhost")])
    assert (await comm.connect(timeout=5))[0]
    return comm


@pytest.mark.django_db(transaction=True)
async def test_a_stamped_fragment_older_than_the_last_one_sent_is_dropped(client, make_user):
    await sync_to_async(client.force_login)(await sync_to_async(make_user)("operator"))
    comm = await communicator(client, "/ws/live/jobs/")
    # As publishers in two processes race: slot 2 arrives, then slot 1 (late), then 3; unstamped ones always pass.
    for html, seq in (("two", 2), ("one", 1), ("again two", 2), ("three", 3), ("row", None)):
        await sync_to_async(publish)("jobs", html, seq=seq)
    assert [await comm.receive_from(timeout=10) for _ in range(3)] == ["two", "three", "row"]
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_late_dashboard_refresh_never_replaces_a_newer_one(client, make_user):
    await sync_to_async(client.force_login)(await sync_to_async(make_user)("viewer"))
    # An hour between ticks: the consumer's own refresh loop stays asleep; the test plays the publishers.
    board = await sync_to_async(Dashboard.objects.create)(slug="late", title="Late", refresh_seconds=3600)
    topic = refresh.topic_for(board.pk, "5m")
    comm = await communicator(client, f"/ws/dashboards/{topic}/")
    for slot in (101, 100, 102):  # the refresh of slot 100 finishes after that of 101
        await sync_to_async(refresh.refresh_once, thread_sensitive=False)(topic, board.pk, "5m", slot)
    fragments = [await comm.receive_from(timeout=10) for _ in range(2)]
    assert [int(SEQ.search(f).group(1)) for f in fragments] == [101, 102]
    assert 'id="dashboard-problem"' in fragments[0]  # no source: the fragment says so, stamped all the same
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_browser_reconnects_after_a_restart_and_fetches_what_it_missed(page, client, make_user):
    from apps.core.live import watched
    from apps.core.models import Job

    client.force_login(make_user("operator"))
    proc, url = start_console()
    port = int(url.rsplit(":", 1)[1])
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": url}])
    page.goto(url + "/jobs/")
    page.evaluate("window.notReloaded = true")
    wait_for(lambda: watched("jobs"), what="the jobs page subscribing")
    proc.stop()  # a restart: uvicorn closes the socket with 1012
    job = Job.objects.create(operation="core.echo_job", params={}, channel="web", status=Job.SUCCEEDED, progress=100)
    proc, _ = start_console(port=port)
    try:
        # Nothing was published for this job: the row comes from the region fetched again after the reconnect.
        page.wait_for_selector(f"#job-row-{job.pk}", timeout=60000)
        assert page.evaluate("window.notReloaded") is True
    finally:
        proc.stop()
