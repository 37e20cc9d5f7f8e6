"""storage.upload through the console's streaming endpoint (a real uvicorn process)
into a real S3 server: bytes, checksum, classification, encryption, flat memory,
and what is left on the endpoint when an upload fails half-way (nothing)."""

import hashlib
import socket
import time
from urllib.parse import urlencode

import psutil
import pytest

from apps.audit.models import AuditEvent
from apps.core.gateway import invoke
from apps.storage.models import MultipartUpload
from tests.support.processes import PeakRss

from .conftest import PART, ConsoleSession, blocks, make_connection, sha256_of

MIB = 1024 * 1024
pytestmark = [pytest.mark.peer, pytest.mark.django_db(transaction=True)]


def object_sha256(s3, bucket, key) -> str:
    return sha256_of(s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(MIB))


def last_event(operation: str) -> AuditEvent:
    return AuditEvent.objects.filter(operation=operation).order_by("-seq").first()


def test_multipart_upload_streams_with_flat_memory(storage_console, client, make_user, conn, s3, bucket):
    proc, base = storage_console
    session = ConsoleSession(base, client, make_user("operator"))
    # Warm up: the first upload imports and builds what every later one reuses.
    warm = 2 * PART + 123
    answer = session.upload(conn.name, bucket, "warm-up.bin", blocks(warm, b"w"), warm, sha256_of(blocks(warm, b"w")))
    assert answer.status_code == 200, answer.text
    size = 24 * PART + 4321  # 25 parts
    expected = sha256_of(blocks(size))
    web = psutil.Process(proc.proc.pid)
    baseline = web.memory_info().rss
    sampler = PeakRss(proc.proc.pid)
    sampler.start()
    answer = session.upload(
        conn.name,
        bucket,
        "big/file.bin",
        blocks(size),
        size,
        expected,
        classification="restricted",
        encryption="AES256",
        metadata="owner=data-team",
    )
    peak = sampler.stop()
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["parts"] == 25 and result["size"] == size and result["sha256"] == expected
    growth = peak - baseline
    print(f"upload of {size / MIB:.0f} MiB: web RSS {baseline / MIB:.0f} MiB -> peak {peak / MIB:.0f} MiB (+{growth / MIB:.1f} MiB)")
    # Two parts in flight, one being cut, one buffer: bounded by parts, not by the file (125 MiB).
    assert growth < 6 * PART, f"web process grew by {growth / MIB:.1f} MiB during a {size / MIB:.0f} MiB upload"
    head = s3.head_object(Bucket=bucket, Key="big/file.bin")
    assert head["ContentLength"] == size
    assert head["ServerSideEncryption"] == "AES256"
    assert head["Metadata"]["sha256"] == expected and head["Metadata"]["owner"] == "data-team"
    assert head["ETag"].strip('"').endswith("-25")
    tags = s3.get_object_tagging(Bucket=bucket, Key="big/file.bin")["TagSet"]
    assert {"Key": "classification", "Value": "restricted"} in tags
    assert object_sha256(s3, bucket, "big/file.bin") == expected
    event = last_event("storage.upload")
    assert event.outcome == "ok" and event.params["key"] == "big/file.bin"  # keys stay visible in the audit log
    assert not MultipartUpload.objects.exists()

    # And back through the console: streamed too, never gathered in memory.
    baseline = web.memory_info().rss
    sampler = PeakRss(proc.proc.pid)
    sampler.start()
    query = urlencode({"connection": conn.name, "bucket": bucket, "key": "big/file.bin"})
    with session.http.stream("GET", f"/storage/download/?{query}") as response:
        assert response.status_code == 200 and response.headers["content-length"] == str(size)
        downloaded = sha256_of(response.iter_bytes(MIB))
    growth = sampler.stop() - baseline
    print(f"download of {size / MIB:.0f} MiB: web RSS +{growth / MIB:.1f} MiB")
    assert downloaded == expected
    assert growth < 6 * PART, f"web process grew by {growth / MIB:.1f} MiB during a {size / MIB:.0f} MiB download"


def test_a_wrong_checksum_aborts_the_upload(storage_console, client, make_user, conn, s3, bucket):
    _, base = storage_console
    session = ConsoleSession(base, client, make_user("operator"))
    size = 3 * PART
    answer = session.upload(conn.name, bucket, "tampered.bin", blocks(size), size, "0" * 64)
    assert answer.status_code == 422
    assert "is not the expected" in answer.json()["error"] and "aborted" in answer.json()["error"]
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    event = last_event("storage.upload")
    assert event.outcome == "failed" and "SHA-256" in event.error


def test_a_browser_that_goes_away_mid_upload_leaves_no_parts(storage_console, client, make_user, conn, s3, bucket):
    _, base = storage_console
    session = ConsoleSession(base, client, make_user("operator"))
    size = 6 * PART
    answer = session.ticket(conn.name, bucket, key="half.bin", size=str(size), sha256=sha256_of(blocks(size)))
    path = answer.json()["url"]
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {size}\r\n\r\n".encode())
        sent = 0
        for chunk in blocks(size):
            sock.sendall(chunk)
            sent += len(chunk)
            if sent >= 3 * PART:
                break
        # Let at least two parts reach S3 before the browser vanishes.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not s3.list_multipart_uploads(Bucket=bucket).get("Uploads"):
            time.sleep(0.05)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not AuditEvent.objects.filter(operation="storage.upload", target__endswith="half.bin").exists():
        time.sleep(0.1)
    event = last_event("storage.upload")
    assert event.outcome == "failed"
    assert "closed the connection" in event.error and "aborted: nothing was stored" in event.error
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    assert not MultipartUpload.objects.exists()


def test_an_endpoint_that_vanishes_mid_upload_is_cleaned_up_when_it_returns(storage_console, client, make_user, proxy, s3, bucket):
    _, base = storage_console
    conn = make_connection(proxy.url)
    operator = make_user("operator")
    session = ConsoleSession(base, client, operator)
    size = 8 * PART

    def body():
        sent = 0
        for chunk in blocks(size):
            if sent == 4 * PART:  # the endpoint goes away once parts have reached it
                wait_for_parts(s3, bucket)
                proxy.stop()
            sent += len(chunk)
            yield chunk

    answer = session.upload(conn.name, bucket, "vanishing.bin", body(), size, sha256_of(blocks(size)))
    assert answer.status_code == 503, answer.text
    error = answer.json()["error"]
    assert "did not answer" in error and "could not be aborted yet" in error
    # The parts that arrived are still on the endpoint (seen directly, not through the proxy) ...
    assert len(s3.list_multipart_uploads(Bucket=bucket)["Uploads"]) == 1
    assert MultipartUpload.objects.get().abort_failed_at is not None
    proxy.start()
    # ... until the endpoint is back and the cleanup (scheduled, or run by hand) aborts them.
    result = invoke("storage.abort_stale_uploads", _actor(operator), {}).result
    assert result.aborted == [f"{conn.name}:{bucket}/vanishing.bin"] and result.failed == []
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    assert not MultipartUpload.objects.exists()


def wait_for_parts(s3, bucket, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            if s3.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]).get("Parts"):
                return
        time.sleep(0.05)
    raise AssertionError("no part reached the endpoint")


def _actor(user):
    from apps.accounts.actors import Actor

    return Actor.for_user(user)


def test_agents_upload_small_content_inline(make_user, actor_of, conn, s3, bucket):
    actor = actor_of(make_user("operator"))
    params = {
        "connection": conn.name,
        "bucket": bucket,
        "key": "notes/ünï code.txt",
        "content": "héllo\n",
        "classification": "confidential",
    }
    result = invoke("storage.upload", actor, params, "mcp").result
    body = s3.get_object(Bucket=bucket, Key="notes/ünï code.txt")
    assert body["Body"].read() == "héllo\n".encode()
    assert result.sha256 == hashlib.sha256("héllo\n".encode()).hexdigest() == body["Metadata"]["sha256"]
    assert body["ContentType"] == "text/plain"
    event = last_event("storage.upload")
    assert event.params["key"] == "notes/ünï code.txt" and "content" not in event.params  # the bytes never reach the audit log


def test_an_upload_ticket_is_checked_before_any_byte_is_sent(storage_console, client, make_user, conn, bucket):
    _, base = storage_console
    session = ConsoleSession(base, client, make_user("operator"))
    answer = session.ticket(conn.name, bucket, key="", sha256="zz", metadata="Bad Name=1")
    assert answer.status_code == 422
    assert set(answer.json()["errors"]) >= {"key", "sha256", "metadata"}
    ticket = session.ticket(conn.name, bucket, key="once.txt", size="2", sha256=hashlib.sha256(b"ab").hexdigest()).json()["url"]
    assert session.http.put(ticket, content=b"ab").status_code == 200
    again = session.http.put(ticket, content=b"ab")
    assert again.status_code == 403 and "already used" in again.json()["error"]
