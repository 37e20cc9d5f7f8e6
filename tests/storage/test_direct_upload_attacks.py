"""A direct upload under attack: a client that sends other parts, or other bytes, than the ones it had
signed, and a second user who reaches for someone else's upload. The S3 server of the tests (moto)
does not check signatures, so a client here can alter a presigned URL or drop its signed headers; the
console's checks on completion are what stops it, as they must on any endpoint."""

from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from django.utils import timezone

from apps.accounts.actors import Actor
from apps.audit.models import AuditEvent
from apps.core.errors import PermissionDenied
from apps.core.gateway import invoke
from apps.storage.models import MultipartUpload
from apps.storage.services.direct import UnverifiedOverwrite
from apps.storage.transfer import ChecksumMismatch

from .conftest import blocks
from .test_direct_upload import PART, begin, checksum, direct_conn, nothing_left, operator, put_parts, ref_of

pytestmark = [pytest.mark.peer, pytest.mark.django_db(transaction=True)]
__all__ = ["direct_conn", "operator"]  # fixtures


def sign(actor, begun, parts: list[bytes]):
    checksums = [{"number": n, "sha256": checksum(d)} for n, d in enumerate(parts, 1)]
    return checksums, invoke("storage.sign_parts", actor, {**ref_of(begun), "parts": checksums}, "web").result.parts


def test_a_part_sent_without_its_signed_checksum_never_costs_the_object_it_would_replace(operator, direct_conn, s3, bucket):
    """moto's ListParts reports no part checksum (like some S3 gateways): the bytes can only be checked once
    the object is complete, and a mismatch then removes it. Over an object no version keeps, that is refused."""
    s3.put_object(Bucket=bucket, Key="kept.bin", Body=b"the object before")
    data = b"".join(blocks(PART + 100, b"honest"))
    parts = [data[:PART], data[PART:]]
    begun = begin(operator, direct_conn, bucket, "kept.bin", len(data))
    declared, signed = sign(operator, begun, parts)
    assert httpx.put(signed[0].url, content=parts[0], headers=signed[0].headers).status_code == 200
    assert httpx.put(signed[1].url, content=b"X" * 100).status_code == 200  # other bytes, no checksum header
    with pytest.raises(UnverifiedOverwrite, match="keeps no versions") as refused:
        invoke("storage.complete_upload", operator, {**ref_of(begun), "parts": declared}, "web")
    assert "nothing was stored" in refused.value.message
    # Refused before completing: the object it would have replaced is untouched.
    assert s3.get_object(Bucket=bucket, Key="kept.bin")["Body"].read() == b"the object before"
    s3.delete_object(Bucket=bucket, Key="kept.bin")
    nothing_left(s3, bucket)


def test_a_part_beyond_the_announced_ones_aborts_the_upload(operator, direct_conn, s3, bucket):
    begun = begin(operator, direct_conn, bucket, "one.bin", 100)
    declared, signed = sign(operator, begun, [b"y" * 100])
    assert httpx.put(signed[0].url, content=b"y" * 100, headers=signed[0].headers).status_code == 200
    url = urlsplit(signed[0].url)
    extra = urlunsplit(url._replace(query=url.query.replace("partNumber=1", "partNumber=2")))
    assert httpx.put(extra, content=b"z" * 100).status_code == 200
    with pytest.raises(ChecksumMismatch):
        invoke("storage.complete_upload", operator, {**ref_of(begun), "parts": declared}, "web")
    nothing_left(s3, bucket)


@pytest.mark.parametrize("step", ["storage.sign_parts", "storage.complete_upload", "storage.abort_upload"])
def test_an_upload_is_signed_completed_or_aborted_only_by_the_user_who_began_it(step, operator, direct_conn, s3, bucket, make_user,
                                                                                  actor_of, make_token):  # fmt: skip
    begun = begin(operator, direct_conn, bucket, "mine.bin", 100)
    declared = put_parts(operator, begun, [b"m" * 100])
    params = {**ref_of(begun), "parts": declared} if step != "storage.abort_upload" else ref_of(begun)
    other = actor_of(make_user("operator", "admin"))
    with pytest.raises(PermissionDenied, match="begun by someone else"):
        invoke(step, other, params, "mcp")
    assert AuditEvent.objects.filter(operation=step, outcome="denied", actor=other.user).exists()
    assert s3.list_multipart_uploads(Bucket=bucket)["Uploads"][0]["UploadId"] == begun.upload_id
    # The same person through one of their API tokens may go on with it.
    token, _ = make_token(operator.user)
    invoke("storage.complete_upload", actor_of(operator.user, token), {**ref_of(begun), "parts": declared}, "mcp")
    assert s3.get_object(Bucket=bucket, Key="mine.bin")["Body"].read() == b"m" * 100


def test_a_direct_upload_still_being_signed_is_not_taken_for_an_abandoned_one(operator, direct_conn, s3, bucket, settings):
    """A large upload may outlast STORAGE_STALE_UPLOAD_HOURS: what counts is when its parts were last signed."""
    begun = begin(operator, direct_conn, bucket, "long.bin", 100)
    past = timezone.now() - timedelta(hours=settings.STORAGE_STALE_UPLOAD_HOURS + 1)
    MultipartUpload.objects.update(started_at=past)  # begun long ago
    declared = put_parts(operator, begun, [b"l" * 100])  # and its parts signed now
    assert invoke("storage.abort_stale_uploads", Actor.system(), {}, "system").result.aborted == []
    invoke("storage.complete_upload", operator, {**ref_of(begun), "parts": declared}, "web")
    assert s3.get_object(Bucket=bucket, Key="long.bin")["Body"].read() == b"l" * 100
    # One whose parts were last signed that long ago is abandoned.
    begun = begin(operator, direct_conn, bucket, "left.bin", 100)
    put_parts(operator, begun, [b"x" * 100])
    MultipartUpload.objects.update(started_at=past, signed_at=past)
    assert invoke("storage.abort_stale_uploads", Actor.system(), {}, "system").result.aborted == [f"{direct_conn.name}:{bucket}/left.bin"]
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
