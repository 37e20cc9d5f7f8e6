"""Scans run on a real Celery worker and report progress live: over the
websocket (Channels) and in Chromium, from upload to triage."""

import asyncio
import io
import re
import zipfile

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.testing.websocket import WebsocketCommunicator
from django.db import connections

from apps.core.gateway import invoke
from apps.core.models import Job
from apps.security.models import Finding, Scan, ScanRoot
from opsconsole.asgi import application

from .samples import ALNUM, Gen

g = Gen("live")


async def subscribe(client, topic):
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    comm = WebsocketCommunicator(application, f"/ws/live/{topic}/", headers=[(b"cookie", cookie), (b"origin", b"http://localhost")])
    connected, _ = await comm.connect(timeout=5)
    assert connected
    return comm


@pytest.mark.django_db(transaction=True)
async def test_scan_progress_reaches_the_browser_from_a_real_worker(client, make_user, actor_of, celery_worker, tmp_path):
    for i in range(300):
        (tmp_path / f"mod_{i}.py").write_text(f"VALUE_{i} = compute({i})\n" * 200)
    (tmp_path / "settings.py").write_text(f'TOKEN = "ghp_{g(ALNUM, 36)}"\n')
    root = await sync_to_async(ScanRoot.objects.create)(name="live", path=str(tmp_path))
    user = await sync_to_async(make_user)("operator")
    await sync_to_async(client.force_login)(user)
    comm = await subscribe(client, "security.scans")
    outcome = await sync_to_async(invoke)("security.scan_secrets", await sync_to_async(actor_of)(user), {"root": root.name})
    fragments = []
    while 'class="pill ok">done<' not in "".join(fragments):
        fragments.append(await comm.receive_from(timeout=60))
    html = "".join(fragments)
    assert f'id="scan-row-{outcome.job.pk}"' in html and f'id="scan-summary-{outcome.job.pk}"' in html
    progress = [int(p) for p in re.findall(r'<progress max="100" value="(\d+)"', html)]
    assert len(progress) >= 2 and progress == sorted(progress)  # it moved, forward
    await comm.disconnect()
    job = await sync_to_async(Job.objects.get)(pk=outcome.job.pk)
    for _ in range(300):  # the scan is recorded just before the worker marks the job finished
        if job.finished:
            break
        await asyncio.sleep(0.1)
        job = await sync_to_async(Job.objects.get)(pk=outcome.job.pk)
    scan = await sync_to_async(Scan.objects.get)(pk=outcome.job.pk)
    await sync_to_async(connections.close_all)()  # the sync_to_async thread's connection, before the test database is dropped
    assert (job.status, scan.status, scan.stats["total"], scan.stats["files"]) == ("succeeded", "done", 1, 301)


async def watch_until_done(comm, job_id) -> list[int]:
    """The progress values the scans topic pushed for one job, until its scan is done."""
    progress = []
    while True:
        try:
            fragment = await comm.receive_from(timeout=60)
        except TimeoutError:
            job = await sync_to_async(Job.objects.get)(pk=job_id)
            raise AssertionError(f"no end of scan {job_id} (job {job.status}: {job.message} {job.error}); progress {progress}") from None
        if f'id="scan-summary-{job_id}"' not in fragment:
            continue  # another job's
        progress += [int(p) for p in re.findall(r'<progress max="100" value="(\d+)"', fragment)]
        if re.search(r'class="pill (ok|failed)">(done|failed)<', fragment):
            assert 'class="pill ok">done<' in fragment, fragment
            return progress


@pytest.fixture
def fresh_channel_layer():
    """A channel layer that received in an earlier test's event loop keeps that loop's receive lock:
    this test's event loop gets a layer of its own."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.mark.django_db(transaction=True)
async def test_bucket_and_engine_image_scans_run_on_a_real_worker(
    client, make_user, actor_of, celery_worker, s3, bucket, conn, environment, images, fresh_channel_layer
):
    for i in range(40):
        s3.put_object(Bucket=bucket, Key=f"exports/part {i:02d}.csv", Body=f"id,value\n{i},{'x' * 20000}\n".encode())
    s3.put_object(Bucket=bucket, Key="exports/creds.env", Body=f"GITHUB_TOKEN=ghp_{g(ALNUM, 36)}\n".encode())
    user = await sync_to_async(make_user)("operator")
    actor = await sync_to_async(actor_of)(user)
    await sync_to_async(client.force_login)(user)
    comm = await subscribe(client, "security.scans")
    params = {"connection": conn.name, "bucket": bucket, "prefix": "exports/"}
    bucket_job = (await sync_to_async(invoke)("security.scan_bucket", actor, params)).job
    progress = await watch_until_done(comm, bucket_job.pk)
    assert len(progress) >= 2 and progress == sorted(progress)  # it moved, forward
    image_job = (await sync_to_async(invoke)("security.scan_image", actor, {"environment": environment.name, "reference": images.base})).job
    await watch_until_done(comm, image_job.pk)
    await comm.disconnect()
    scans = {}
    for job_id in (bucket_job.pk, image_job.pk):
        scans[job_id] = await sync_to_async(Scan.objects.get)(pk=job_id)
    paths = await sync_to_async(lambda: sorted(Finding.objects.filter(target=scans[bucket_job.pk].target).values_list("path", flat=True)))()
    await sync_to_async(connections.close_all)()
    assert paths == [f"s3://{bucket}/exports/creds.env"] and scans[bucket_job.pk].stats["files"] == 41
    image = scans[image_job.pk]
    assert image.target == f"image:{environment.name}/{images.base}" and image.stats["skipped"] == {"binary": 1}
    assert image.stats["by_severity"] == {"high": 1, "low": 1}  # runs as root; no healthcheck


def zipped(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_browser_uploads_watches_and_triages(login_page, make_user, console_server, celery_worker, tmp_path):
    token = "glpat-" + g(ALNUM, 20)
    archive = tmp_path / "service.zip"
    archive.write_bytes(zipped({"service/config.py": f'GITLAB_TOKEN = "{token}"\n', "service/app.py": "print('ok')\n"}))
    page = login_page(make_user("operator"))
    page.goto(console_server + "/security/scans/new/")
    page.select_option("select[name=kind]", "secrets")
    page.set_input_files("input[name=file]", str(archive))
    page.click("#scan-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/security/scans/[0-9a-f-]+/$"))
    page.wait_for_selector("#job-state:has-text('succeeded')", timeout=60000)
    page.reload()
    page.click("#findings-table a:has-text('GitLab personal access token')")
    assert token not in page.content()
    assert "glpa********" in page.inner_text("#finding-preview")
    page.select_option("#triage-form select[name=status]", "false_positive")
    page.fill("#triage-form textarea[name=comment]", "A revoked token from the tutorial.")
    page.click("#triage-form button[type=submit]")
    page.wait_for_selector("#finding-status:has-text('false positive')")
    assert Finding.objects.get(rule="gitlab-pat").status == "false_positive"
