"""Storage peers: a real S3 server (moto in server mode, over HTTP on loopback),
a TCP proxy in front of it that tests kill to make the endpoint vanish, and a
console web process of our own whose memory the upload tests measure."""

from __future__ import annotations

import hashlib
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import boto3
import httpx
import pytest
from botocore.config import Config

from apps.core.models import Job
from apps.storage.models import Connection
from tests.support import peers, processes

PART = 5 * 1024 * 1024  # the console processes of these tests cut 5 MiB parts


@pytest.fixture(scope="session")
def moto_server():
    """moto's S3 in server mode: boto3 talks to it over HTTP exactly as to AWS."""
    binary = peers.require_binary("moto_server")
    port = processes.free_port()
    proc = processes.Process("moto", [binary, "-H", "127.0.0.1", "-p", str(port)])
    proc.wait_until(lambda: processes.port_open(port), what="listening")
    yield f"http://127.0.0.1:{port}"
    proc.stop()


@pytest.fixture(scope="session")
def s3(moto_server):
    """A plain boto3 client on the server: arranges and checks behind the console's back."""
    return boto3.client(
        "s3",
        endpoint_url=moto_server,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )


@pytest.fixture
def bucket(s3):
    name = f"t-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    return name


def make_connection(endpoint: str, **fields) -> Connection:
    fields.setdefault("name", f"moto-{uuid.uuid4().hex[:8]}")
    return Connection.objects.create(
        endpoint_url=endpoint,
        region="us-east-1",
        addressing_style="path",
        credentials=Connection.STORED,
        access_key_id="testing",
        secret_access_key="testing",
        **fields,
    )


@pytest.fixture
def conn(db, moto_server) -> Connection:
    return make_connection(moto_server)


class Proxy:
    """The S3 server behind a TCP proxy that can be killed and started again."""

    def __init__(self, upstream: str):
        self.upstream_port = urlparse(upstream).port
        self.port = processes.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.start()

    def start(self):
        script = str(Path(__file__).with_name("tcp_proxy.py"))
        self.proc = processes.Process("s3-proxy", [sys.executable, script, str(self.port), str(self.upstream_port)])
        self.proc.wait_until(lambda: processes.port_open(self.port), what="listening")

    def stop(self):
        self.proc.stop(timeout=2)


@pytest.fixture
def proxy(moto_server):
    p = Proxy(moto_server)
    yield p
    p.stop()


@pytest.fixture(scope="session")
def storage_console(django_db_setup, django_db_blocker):
    """A console web process (uvicorn) of these tests, with 5 MiB parts, two in flight."""
    with django_db_blocker.unblock():
        proc, url = processes.start_console(STORAGE_PART_SIZE=str(PART), STORAGE_UPLOAD_CONCURRENCY="2")
    yield proc, url
    proc.stop()


def wait_for_job(job_id, timeout: float = 90) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.finished:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s: {Job.objects.get(pk=job_id).message}")


def blocks(size: int, seed: bytes = b"x", block: int = 1024 * 1024):
    """Deterministic pseudo-random bytes, produced a block at a time (never held whole)."""
    base = hashlib.sha256(seed).digest() * (block // 32)
    sent, n = 0, 0
    while sent < size:
        chunk = (n.to_bytes(8, "big") + base)[: min(block, size - sent)]
        n += 1
        sent += len(chunk)
        yield chunk


def sha256_of(chunks) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


class ConsoleSession:
    """A browser-like HTTP session on a console process, logged in as `user`."""

    def __init__(self, base: str, client, user):
        client.force_login(user)
        self.base = base
        self.http = httpx.Client(base_url=base, cookies={"sessionid": client.cookies["sessionid"].value}, timeout=120)

    def ticket(self, connection: str, bucket: str, **fields) -> httpx.Response:
        page = self.http.get(f"/storage/c/{connection}/b/{bucket}/upload/")
        assert page.status_code == 200, page.text[:500]
        token = self.http.cookies["csrftoken"]
        return self.http.post(f"/storage/c/{connection}/b/{bucket}/upload/ticket/", data=fields, headers={"X-CSRFToken": token})

    def upload(self, connection: str, bucket: str, key: str, chunks, size: int, sha256: str, **fields) -> httpx.Response:
        answer = self.ticket(connection, bucket, key=key, size=str(size), sha256=sha256, **fields)
        assert answer.status_code == 200, answer.text
        return self.http.put(answer.json()["url"], content=chunks, headers={"Content-Length": str(size)})
