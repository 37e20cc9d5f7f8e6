"""Live jobs: a real Celery worker runs the job and its progress reaches a
websocket client (Channels' communicator) and a real browser."""

import asyncio
import re

import pytest
from asgiref.sync import sync_to_async
from channels.testing.websocket import WebsocketCommunicator

from apps.core.gateway import invoke
from apps.core.live import watched
from apps.core.models import Job
from opsconsole.asgi import application


async def communicator_for(client, topic):
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    comm = WebsocketCommunicator(application, f"/ws/live/{topic}/", headers=[(b"cookie", cookie), (b"origin", b"http://localhost")])
    connected, code = await comm.connect(timeout=5)
    return comm, connected, code


@pytest.mark.django_db(transaction=True)
async def test_websocket_client_receives_progress_from_a_real_worker(client, make_user, actor_of, celery_worker):
    user = await sync_to_async(make_user)("operator")
    await sync_to_async(client.force_login)(user)
    actor = await sync_to_async(actor_of)(user)
    job_topic = "jobs"  # the job id is not known before the call: watch the list topic first
    comm, connected, _ = await communicator_for(client, job_topic)
    assert connected
    outcome = await sync_to_async(invoke)("core.echo_job", actor, {"steps": 3, "step_seconds": 0.2, "message": "tick"})
    job_comm, connected, _ = await communicator_for(client, f"job.{outcome.job.pk}")
    assert connected
    fragments = []
    while "succeeded" not in "".join(fragments):
        fragments.append(await job_comm.receive_from(timeout=30))
    html = "".join(fragments)
    assert "step 3/3: tick" in html or await sync_to_async(Job.objects.get(pk=outcome.job.pk).log_lines.count)() == 3
    assert re.search(r'id="job-state">succeeded<', html)
    row = await comm.receive_from(timeout=10)
    assert f"job-row-{outcome.job.pk}" in row
    await comm.disconnect()
    await job_comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_websocket_refuses_topics_the_role_may_not_see(client, make_user):
    auditor = await sync_to_async(make_user)("auditor")
    await sync_to_async(client.force_login)(auditor)
    _, connected, code = await communicator_for(client, "jobs")
    assert not connected and code == 4403
    comm, connected, _ = await communicator_for(client, "activity")  # the live audit feed
    assert connected
    await comm.disconnect()
    other = await sync_to_async(make_user)("viewer")
    _, connected, _ = await communicator_for(client, f"user.{other.pk}")
    assert not connected


@pytest.mark.django_db(transaction=True)
async def test_the_activity_feed_is_published_only_while_watched(client, make_user, actor_of):
    user = await sync_to_async(make_user)("auditor", "operator")
    await sync_to_async(client.force_login)(user)
    actor = await sync_to_async(actor_of)(user)
    assert not await sync_to_async(watched)("activity")
    comm, connected, _ = await communicator_for(client, "activity")
    assert connected and await sync_to_async(watched)("activity")
    outcome = await sync_to_async(invoke)("core.health", actor, {"include_workers": False})
    row = await comm.receive_from(timeout=10)
    assert "core.health" in row and f">{outcome.audit_seq}<" in row
    await comm.disconnect()
    assert not await sync_to_async(watched)("activity")


@pytest.mark.django_db(transaction=True)
async def test_anonymous_websocket_is_refused(client):
    comm = WebsocketCommunicator(application, "/ws/live/jobs/", headers=[(b"origin", b"http://localhost")])
    connected, _ = await comm.connect(timeout=5)
    assert not connected
    await asyncio.sleep(0)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_browser_watches_a_job_progress_live(login_page, make_user, console_server, celery_worker):
    page = login_page(make_user("operator"))
    page.goto(console_server + "/operations/core.echo_job/")
    page.fill("input[name=message]", "from the browser")
    page.fill("input[name=steps]", "4")
    page.fill("input[name=step_seconds]", "0.5")
    page.click("#op-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/jobs/[0-9a-f-]+/$"))
    # The page was rendered before the job finished; what follows arrives over the websocket.
    page.wait_for_selector("#job-log .line:has-text('step 2/4')")
    page.wait_for_selector("#job-state:has-text('succeeded')", timeout=30000)
    # Nothing lost, nothing twice: lines logged before the websocket subscribed come in its snapshot.
    texts = page.locator("#job-log .line").evaluate_all("lines => lines.map(line => line.lastChild.textContent)")
    assert texts == [f"step {i}/4: from the browser" for i in range(1, 5)]
    assert "from the browser" in page.inner_text("#job-result")


@pytest.mark.django_db(transaction=True)
async def test_subscribing_late_gets_the_whole_job_as_a_snapshot(client, make_user):
    from apps.core.models import JobLogLine

    user = await sync_to_async(make_user)("viewer")
    await sync_to_async(client.force_login)(user)
    job = await sync_to_async(Job.objects.create)(operation="core.echo_job", params={}, channel="web", status=Job.SUCCEEDED, progress=100)
    for i in (1, 2, 3):
        await sync_to_async(JobLogLine.objects.create)(job=job, text=f"line {i}")
    comm, connected, _ = await communicator_for(client, f"job.{job.pk}")
    assert connected
    snapshot = await comm.receive_from(timeout=5)
    assert 'id="job-log"' in snapshot and 'hx-swap-oob="true"' in snapshot
    assert [f"line {i}" in snapshot for i in (1, 2, 3)] == [True] * 3 and ">succeeded<" in snapshot
    await comm.disconnect()
    comm, connected, _ = await communicator_for(client, "job.not-a-uuid")
    assert connected and await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()
