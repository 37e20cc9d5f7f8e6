"""Uploads straight to the bucket through the gateway's operations (storage.begin_upload,
sign_parts, complete_upload, abort_upload) against a real S3 server: the parts travel
from the client to the endpoint on presigned URLs; the console checks before, verifies
after, and leaves nothing behind when the bytes are not the declared ones."""

import base64
import hashlib

import httpx
import pytest

from apps.audit.models import AuditEvent
from apps.core.errors import InvalidInput, PermissionDenied
from apps.core.gateway import invoke
from apps.storage.client import StorageError
from apps.storage.models import MultipartUpload
from apps.storage.services.classification import ClassificationGuard
from apps.storage.services.direct import composite_sha256
from apps.storage.transfer import ChecksumMismatch

from .conftest import blocks, make_connection

pytestmark = [pytest.mark.peer, pytest.mark.django_db(transaction=True)]
MIB = 1024 * 1024
PART = 5 * MIB  # STORAGE_DIRECT_PART_SIZE of these tests


@pytest.fixture
def direct_conn(db, moto_server, settings):
    settings.STORAGE_DIRECT_PART_SIZE = PART
    return make_connection(moto_server, direct_uploads=True)


@pytest.fixture
def operator(make_user, actor_of):
    return actor_of(make_user("operator"))


def checksum(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def begin(actor, conn, bucket, key, size, **fields):
    params = {"connection": conn.name, "bucket": bucket, "key": key, "size": size, **fields}
    return invoke("storage.begin_upload", actor, params, "web").result


def put_parts(actor, begun, parts: list[bytes], declared: list[bytes] | None = None) -> list[dict]:
    """What the browser does: presign each part with its SHA-256, PUT it to the endpoint."""
    checksums = [{"number": n, "sha256": checksum(d)} for n, d in enumerate(declared or parts, 1)]
    ref = {"connection": begun.connection, "bucket": begun.bucket, "key": begun.key, "upload_id": begun.upload_id}
    signed = invoke("storage.sign_parts", actor, {**ref, "parts": checksums}, "web").result
    for part, data in zip(signed.parts, parts, strict=False):
        answer = httpx.put(part.url, content=data, headers=part.headers)
        assert answer.status_code == 200, answer.text
    return checksums


def ref_of(begun) -> dict:
    return {"connection": begun.connection, "bucket": begun.bucket, "key": begun.key, "upload_id": begun.upload_id}


def nothing_left(s3, bucket):
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    assert not MultipartUpload.objects.exists()


def test_parts_go_straight_to_the_bucket_and_are_verified(operator, direct_conn, s3, bucket):
    data = b"".join(blocks(2 * PART + 1234, b"direct"))
    parts = [data[i : i + PART] for i in range(0, len(data), PART)]
    begun = begin(operator, direct_conn, bucket, "in/report ü.bin", len(data), classification="confidential", metadata={"owner": "fin"})
    assert (begun.parts, begun.part_size) == (3, PART)
    declared = put_parts(operator, begun, parts)
    done = invoke("storage.complete_upload", operator, {**ref_of(begun), "parts": declared}, "web").result
    assert done.size == len(data) and done.parts == 3
    assert done.checksum_sha256 == composite_sha256([checksum(p) for p in parts])
    stored = s3.get_object(Bucket=bucket, Key="in/report ü.bin", ChecksumMode="ENABLED")
    assert stored["Body"].read() == data
    assert stored["ChecksumSHA256"] == done.checksum_sha256  # the endpoint's own checksum of the bytes it holds
    assert stored["Metadata"]["owner"] == "fin" and stored["ContentType"] == "application/octet-stream"
    assert s3.get_object_tagging(Bucket=bucket, Key="in/report ü.bin")["TagSet"] == [{"Key": "classification", "Value": "confidential"}]
    assert not MultipartUpload.objects.exists()
    # Every step is audited with its key visible; no presigned URL or signature anywhere in the audit log.
    events = AuditEvent.objects.filter(operation__in=["storage.begin_upload", "storage.sign_parts", "storage.complete_upload"])
    assert sorted(e.operation for e in events) == ["storage.begin_upload", "storage.complete_upload", "storage.sign_parts"]
    assert all(e.outcome == "ok" and e.params["key"] == "in/report ü.bin" for e in events)
    for event in AuditEvent.objects.all():
        text = f"{event.params} {event.error} {event.target}"
        assert "X-Amz-Signature" not in text and "http://" not in text, event.operation


def test_an_upload_is_checked_before_it_starts(operator, direct_conn, s3, bucket, settings, make_user, actor_of):
    settings.STORAGE_UPLOAD_MAX_BYTES = 10 * MIB
    settings.STORAGE_UPLOAD_CONTENT_TYPES = ["image/*", "text/csv"]
    cases = {
        "size": {"size": 10 * MIB + 1},
        "content_type": {"content_type": "application/x-msdownload"},
        "key": {"key": "bad\x07key"},
        "metadata": {"metadata": {"Bad Name": "x"}},
    }
    for field, override in cases.items():
        params = {"key": "a.png", "size": MIB, "content_type": "image/png", **override}
        with pytest.raises(InvalidInput) as refused:
            begin(operator, direct_conn, bucket, **params)
        assert field in refused.value.errors, (field, refused.value.errors)
    with pytest.raises(InvalidInput) as refused:  # a header injection is not a content type
        begin(operator, direct_conn, bucket, "a.csv", MIB, content_type="text/csv\r\nx-amz-acl: public-read")
    assert "content_type" in refused.value.errors
    with pytest.raises(PermissionDenied):
        begin(actor_of(make_user("viewer")), direct_conn, bucket, "a.png", MIB)
    assert AuditEvent.objects.filter(operation="storage.begin_upload", outcome="denied").exists()
    streamed_only = make_connection(direct_conn.endpoint_url)
    with pytest.raises(StorageError, match="direct_uploads is off"):
        begin(operator, streamed_only, bucket, "a.png", MIB)
    nothing_left(s3, bucket)
    # The streamed path applies the same rules.
    with pytest.raises(InvalidInput) as refused:
        invoke("storage.upload", operator, {"connection": direct_conn.name, "bucket": bucket, "key": "x.exe", "content": "x",
                                            "content_type": "application/x-msdownload"})  # fmt: skip
    assert "content_type" in refused.value.errors


def test_a_part_whose_bytes_differ_from_its_checksum_is_refused_and_nothing_stays(operator, direct_conn, s3, bucket):
    data = b"".join(blocks(PART + 100, b"honest"))
    parts = [data[:PART], data[PART:]]
    tampered = [parts[0], b"X" * 100]  # same size, other bytes than the browser declared
    begun = begin(operator, direct_conn, bucket, "tampered.bin", len(data))
    declared = put_parts(operator, begun, tampered, declared=parts)
    with pytest.raises(ChecksumMismatch, match="SHA-256") as refused:
        invoke("storage.complete_upload", operator, {**ref_of(begun), "parts": declared}, "web")
    assert "nothing was stored" in refused.value.message
    nothing_left(s3, bucket)
    event = AuditEvent.objects.filter(operation="storage.complete_upload").get()
    assert event.outcome == "failed" and "SHA-256" in event.error


def test_missing_or_short_parts_abort_the_upload_before_completing(operator, direct_conn, s3, bucket):
    data = b"".join(blocks(2 * PART, b"short"))
    begun = begin(operator, direct_conn, bucket, "missing.bin", len(data))
    declared = put_parts(operator, begun, [data[:PART]], declared=[data[:PART], data[PART:]])  # part 2 never sent
    with pytest.raises(ChecksumMismatch, match="some were not uploaded") as refused:
        invoke("storage.complete_upload", operator, {**ref_of(begun), "parts": declared}, "web")
    assert "aborted: nothing was stored" in refused.value.message
    nothing_left(s3, bucket)

    begun = begin(operator, direct_conn, bucket, "short.bin", len(data))
    declared = put_parts(operator, begun, [data[:PART], data[PART:-1]], declared=[data[:PART], data[PART:-1]])
    with pytest.raises(ChecksumMismatch, match="Part 2 is"):
        invoke("storage.complete_upload", operator, {**ref_of(begun), "parts": declared}, "web")
    nothing_left(s3, bucket)


def test_signing_is_limited_to_the_announced_parts_and_an_abort_drops_them(operator, direct_conn, s3, bucket):
    begun = begin(operator, direct_conn, bucket, "small.bin", 100)
    assert begun.parts == 1
    with pytest.raises(StorageError, match="no part 2"):
        invoke("storage.sign_parts", operator, {**ref_of(begun), "parts": [{"number": 2, "sha256": checksum(b"x")}]}, "web")
    put_parts(operator, begun, [b"y" * 100])
    assert invoke("storage.abort_upload", operator, ref_of(begun), "web").result.aborted
    nothing_left(s3, bucket)
    with pytest.raises(StorageError, match="no direct upload"):
        invoke("storage.sign_parts", operator, {**ref_of(begun), "parts": [{"number": 1, "sha256": checksum(b"x")}]}, "web")


def test_begin_hands_the_browser_the_direct_part_size_and_concurrency_not_the_streamed_paths(operator, direct_conn, s3, bucket,
                                                                                            settings):  # fmt: skip
    """No part sits in a web process on this path, so it has settings of its own (bigger parts, more at once
    than the streamed path's memory-bound ones), and each signing request covers at least a round of PUTs."""
    settings.STORAGE_PART_SIZE, settings.STORAGE_UPLOAD_CONCURRENCY = 5 * MIB, 2
    settings.STORAGE_DIRECT_PART_SIZE, settings.STORAGE_DIRECT_UPLOAD_CONCURRENCY = 16 * MIB, 12
    begun = begin(operator, direct_conn, bucket, "big.bin", 1024 * MIB)
    assert (begun.part_size, begun.parts, begun.concurrency, begun.sign_batch) == (16 * MIB, 64, 12, 12)
    assert MultipartUpload.objects.get(upload_id=begun.upload_id).part_size == 16 * MIB  # completion checks sizes against it
    # Batches grow so that an upload takes ~50 signing requests (each an audited write), up to 100 parts a request.
    settings.STORAGE_DIRECT_UPLOAD_CONCURRENCY = 4
    assert begin(operator, direct_conn, bucket, "mid.bin", 600 * 16 * MIB).sign_batch == 12
    huge = begin(operator, direct_conn, bucket, "huge.bin", 10_000 * 16 * MIB + 1)  # past 10,000 parts: bigger ones
    assert (huge.part_size, huge.parts, huge.sign_batch) == (17 * MIB, 9412, 100)
    batch = [{"number": n, "sha256": checksum(b"x")} for n in range(1, 102)]
    assert len(invoke("storage.sign_parts", operator, {**ref_of(huge), "parts": batch[:100]}, "web").result.parts) == 100
    with pytest.raises(InvalidInput):
        invoke("storage.sign_parts", operator, {**ref_of(huge), "parts": batch}, "web")
    for upload in MultipartUpload.objects.all():
        invoke("storage.abort_upload", operator, {"connection": direct_conn.name, "bucket": bucket, "key": upload.key,
                                                  "upload_id": upload.upload_id}, "web")  # fmt: skip
    nothing_left(s3, bucket)


def test_a_direct_upload_over_a_confidential_object_is_refused_at_begin_and_again_at_completion(operator, direct_conn, s3, bucket):
    s3.put_object(Bucket=bucket, Key="kept.bin", Body=b"precious", Tagging="classification=confidential")
    with pytest.raises(ClassificationGuard, match="is classified confidential"):
        begin(operator, direct_conn, bucket, "kept.bin", 5, classification="confidential")
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket) and not MultipartUpload.objects.exists()
    # The object appears (or is raised to confidential) while the browser sends the parts: completion re-checks.
    begun = begin(operator, direct_conn, bucket, "late.bin", 5, classification="internal")
    declared = put_parts(operator, begun, [b"later"])
    s3.put_object(Bucket=bucket, Key="late.bin", Body=b"arrived", Tagging="classification=confidential")
    with pytest.raises(ClassificationGuard, match="is classified confidential") as refused:
        invoke("storage.complete_upload", operator, {**ref_of(begun), "parts": declared}, "web")
    assert "nothing was stored" in refused.value.message
    assert s3.get_object(Bucket=bucket, Key="late.bin")["Body"].read() == b"arrived"
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket) and not MultipartUpload.objects.exists()
