"""Security test fixtures: scan roots in temp dirs, the shipped advisories, and
scans run through the gateway and the job runner (in-process, or on a real worker)."""

from __future__ import annotations

import itertools
import secrets
import subprocess

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core import gateway
from apps.core.models import Job
from apps.security import uploads
from apps.security.deps import osv
from apps.security.deps.feeds import SHIPPED
from apps.security.models import Scan, ScanRoot

# The real peers of the infrastructure and storage tests, reused for images on an engine and buckets:
# podman's Docker API service of this run with its busybox images, and moto's S3 server.
from tests.infrastructure.conftest import environment, images, podman  # noqa: F401
from tests.storage.conftest import bucket, conn, moto_server, s3  # noqa: F401


@pytest.fixture
def scan_root(db, tmp_path):
    """scan_root(files={"a.py": "..."}) -> (ScanRoot, its directory)."""

    def make(files: dict[str, str | bytes] | None = None, name: str | None = None):
        base = tmp_path / (name or f"root-{secrets.token_hex(3)}")
        base.mkdir()
        for rel, content in (files or {}).items():
            path = base / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return ScanRoot.objects.create(name=base.name, path=str(base)), base

    return make


@pytest.fixture
def advisories(db):
    """The few GHSA records shipped beside the PyPA snapshot (PyPI and npm): quick to load in every test."""
    return osv.import_records(itertools.chain.from_iterable(osv.read_records(p) for p in sorted(SHIPPED.glob("GHSA-*.json"))))


@pytest.fixture
def stage(actor_of):
    """stage(user, "name.zip", data) -> the `staged` input of a scan: the file staged as the New scan page does."""

    def make(user, name: str, data: bytes, actor=None) -> dict:
        return uploads.stage(SimpleUploadedFile(name, data), actor or actor_of(user)).as_input()

    return make


@pytest.fixture
def run_scan(actor_of):
    """run_scan(user, "security.scan_secrets", params) -> (job, scan): the gateway queues it, the job runner runs it here."""

    def run(user, name, params):
        outcome = gateway.invoke(name, actor_of(user), params, "web")
        assert outcome.status == "queued"
        gateway.run_job(str(outcome.job.pk))
        job = Job.objects.get(pk=outcome.job.pk)
        return job, Scan.objects.filter(pk=job.pk).first()

    return run


def git(repo, *args, **env):
    base_env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
        "HOME": str(repo),
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(["git", *args], cwd=repo, env={**base_env, **env}, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def without_permission():
    """without_permission("operator", "core.run_read_ops"): take a permission from a role for one test."""
    from django.contrib.auth.models import Group, Permission

    from apps.accounts.actors import forget_permissions

    def take(role: str, perm: str) -> None:
        app_label, codename = perm.split(".")
        Group.objects.get(name=role).permissions.remove(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        forget_permissions()

    yield take
    forget_permissions()  # the database rolls back; the per-process cache must not outlive it
