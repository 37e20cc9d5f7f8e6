"""A claimed upload is kept for the job that reads it, and no longer: however the job ends without a completed scan
(an archive that cannot be unpacked, a scan that fails, cancelled before it ran, refused at its start, failed by
the reaper after its worker stopped) its stored file is released once the end is committed, and its row stays as
the record of what was uploaded. A job that has not ended (stopped by its worker's shutdown mid-unpack, its task
delivered again) keeps its file. What a job's end left behind, the scheduled sweep removes. Real files and archives,
the gateway and the job runner (in-process, and on a real Celery worker)."""

from __future__ import annotations

import io
import os
import tarfile
import time
import zipfile
from datetime import timedelta

import pytest
from celery.exceptions import WorkerShutdown
from django.conf import settings
from django.utils import timezone

from apps.accounts.actors import Actor
from apps.audit.models import AuditEvent
from apps.core import gateway, leases
from apps.core.models import Job
from apps.security import sources
from apps.security.models import Scan, Upload
from tests.support.waiting import wait_for

from .samples import ALNUM, Gen

g = Gen("upload-release")
SECRET = f'GITHUB_TOKEN = "ghp_{g(ALNUM, 36)}"\n'


def zipped(files: dict[str, str], method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


def corrupt_zip() -> bytes:
    """A zip whose directory reads well but whose member's bytes were changed after it was written (its CRC fails)."""
    data = bytearray(zipped({"app/settings.py": SECRET * 4}, zipfile.ZIP_STORED))
    data[data.index(b"GITHUB_TOKEN")] ^= 0x20
    return bytes(data)


def truncated_tar_gz() -> bytes:
    """A .tar.gz cut in the middle (an upload that stopped short): its first header reads, its end never comes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for i in range(3):
            data = os.urandom(50_000)  # incompressible: the cut lands inside the members
            info = tarfile.TarInfo(f"blob{i}.bin")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    whole = buf.getvalue()
    return whole[: len(whole) // 2]


@pytest.fixture
def upload_dir(settings, tmp_path):
    settings.SECURITY_UPLOAD_DIR = str(tmp_path / "uploads")
    return tmp_path / "uploads"


@pytest.fixture
def claimed(stage):
    """claimed(actor, "name.zip", data) -> (job, upload): staged as the New scan page does, claimed by the scan's call."""

    def claim(actor, name: str, data: bytes, operation: str = "security.scan_secrets"):
        outcome = gateway.invoke(operation, actor, {"staged": stage(actor.user, name, data, actor=actor)}, "web")
        assert outcome.status == "queued"
        upload = Upload.objects.get(pk=outcome.job.params["upload_id"])
        assert upload.stored_path.read_bytes() == data
        return outcome.job, upload

    return claim


def files_under(path) -> list:
    return sorted(p for p in path.rglob("*") if p.is_file())


def worker_outcome(job: Job) -> AuditEvent:
    return AuditEvent.objects.get(request_id=job.request_id, channel="worker")


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("site.zip", corrupt_zip(), "could not be unpacked: Bad CRC-32"),
        ("site.tar.gz", truncated_tar_gz(), "could not be unpacked"),
        # unpacked, then the scan fails on what it found
        ("site.zip", zipped({".security-baseline.json": "{not json", "app.py": SECRET}), "not a valid baseline file"),
    ],
    ids=["corrupt-zip", "truncated-tar-gz", "fails-while-scanning"],
)
def test_a_job_that_fails_releases_its_upload(
    make_user, actor_of, claimed, upload_dir, django_capture_on_commit_callbacks, name, data, error
):
    user = make_user("operator")
    job, upload = claimed(actor_of(user), name, data)
    with django_capture_on_commit_callbacks(execute=True):
        gateway.run_job(str(job.pk))
    job.refresh_from_db()
    assert job.status == Job.FAILED and error in job.error
    assert not upload.stored_path.exists() and files_under(upload_dir) == []
    assert Upload.objects.get(pk=upload.pk).sha256 == upload.sha256  # the record of what was uploaded stays
    assert worker_outcome(job).outcome == "failed"
    scan = Scan.objects.filter(pk=job.pk).first()  # unpacked before it failed: its scan says so
    assert (scan.status if scan else None) == (Scan.FAILED if "baseline" in error else None)


def test_a_job_cancelled_before_it_runs_releases_its_upload(make_user, actor_of, claimed, upload_dir, django_capture_on_commit_callbacks):
    actor = actor_of(make_user("operator"))
    job, upload = claimed(actor, "app.py", SECRET.encode())
    with django_capture_on_commit_callbacks(execute=True):
        assert gateway.invoke("core.cancel_job", actor, {"job_id": job.pk}).result.status == Job.CANCELLED
    assert not upload.stored_path.exists() and files_under(upload_dir) == []
    gateway.run_job(str(job.pk))  # its task, delivered after all, runs nothing
    job.refresh_from_db()
    assert (job.status, job.attempts) == (Job.CANCELLED, 0) and not Scan.objects.exists()


def test_a_job_refused_at_its_start_releases_its_upload(
    make_user, make_token, actor_of, claimed, upload_dir, django_capture_on_commit_callbacks
):
    user = make_user("operator")
    token, _raw = make_token(user)
    agent = actor_of(user, token)
    job, upload = claimed(agent, "app.py", SECRET.encode(), operation="security.audit_dependencies")
    token.revoked_at = timezone.now()  # revoked between the call and the job's start
    token.save(update_fields=["revoked_at"])
    with django_capture_on_commit_callbacks(execute=True):
        gateway.run_job(str(job.pk))
    job.refresh_from_db()
    assert job.status == Job.FAILED and worker_outcome(job).outcome == "denied"
    assert not upload.stored_path.exists() and files_under(upload_dir) == [] and not Scan.objects.exists()


def test_a_job_stopped_mid_unpack_keeps_its_file_until_the_reaper_ends_it(
    make_user, actor_of, claimed, upload_dir, monkeypatch, django_capture_on_commit_callbacks
):
    user = make_user("operator")
    job, upload = claimed(actor_of(user), "site.zip", zipped({"app.py": SECRET}))

    def shutdown_mid_unpack(archive, dest, original_name):
        (dest / "half-written.py").write_text("x = 1\n")
        raise WorkerShutdown(0)  # what a worker's warm shutdown raises in the task it runs

    with monkeypatch.context() as patch, django_capture_on_commit_callbacks(execute=True):
        patch.setattr(sources, "unpack", shutdown_mid_unpack)
        with pytest.raises(WorkerShutdown):
            gateway.run_job(str(job.pk))
    job.refresh_from_db()
    assert (job.status, job.worker) == (Job.RUNNING, leases.worker_id()), "not ended: the worker left it"
    assert upload.stored_path.exists(), "kept for whatever runs it next"
    with django_capture_on_commit_callbacks(execute=True):
        gateway.run_job(str(job.pk))  # the task delivered again while the lease lives: left alone
    assert Job.objects.get(pk=job.pk).status == Job.RUNNING and upload.stored_path.exists()

    # The lease runs out: the reaper ends it (a scan is not resumed) and only then is the file released.
    with django_capture_on_commit_callbacks(execute=True):
        assert gateway.reap_jobs(now=timezone.now() + timedelta(seconds=settings.JOB_LEASE_SECONDS + 1)) == 1
    job.refresh_from_db()
    assert job.status == Job.FAILED and job.error.startswith("worker lost at")
    assert not upload.stored_path.exists() and files_under(upload_dir) == []
    assert Upload.objects.filter(pk=upload.pk).exists()


def test_the_sweep_removes_what_an_ended_job_left_behind(make_user, actor_of, claimed, upload_dir, settings):
    actor = actor_of(make_user("operator"))
    ended, left = claimed(actor, "ended.py", SECRET.encode())
    waiting, kept = claimed(actor, "waiting.py", SECRET.encode())
    gateway.invoke("core.cancel_job", actor, {"job_id": ended.pk})
    left.stored_path.write_bytes(b"left behind")  # as when the worker died right after recording the end
    assert Job.objects.get(pk=ended.pk).status == Job.CANCELLED and Job.objects.get(pk=waiting.pk).status == Job.QUEUED
    hour_ago = time.time() - 3600 - 60
    for path in (left.stored_path, kept.stored_path):
        os.utime(path, (hour_ago, hour_ago))
    settings.SECURITY_UPLOAD_STAGED_MINUTES = 60
    assert gateway.invoke("security.sweep_staged_uploads", Actor.system(), {}, "system").result.removed == 1
    assert files_under(upload_dir) == [kept.stored_path], "a queued job's file stays, however old"
    assert Upload.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_corrupt_archive_on_a_real_worker_leaves_no_file(make_user, actor_of, claimed, celery_worker):
    # The worker's own SECURITY_UPLOAD_DIR (the run's data directory): the file the worker would read.
    job, upload = claimed(actor_of(make_user("operator")), "site.zip", corrupt_zip())
    job = wait_for(lambda: Job.objects.filter(pk=job.pk, status=Job.FAILED).first(), what="the worker to fail the job")
    assert "could not be unpacked" in job.error
    wait_for(lambda: not upload.stored_path.exists(), what="the upload's file to be released")
    assert Upload.objects.filter(pk=upload.pk).exists()
