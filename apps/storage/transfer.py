"""Streaming a byte source of unknown length to S3 with flat memory.

`write_stream` cuts the source into parts of STORAGE_PART_SIZE as the bytes
arrive and uploads up to STORAGE_UPLOAD_CONCURRENCY parts at once: at most
concurrency + 1 parts are in memory (those in flight and the one being filled),
never the whole object, and nothing touches local disk. The object's SHA-256
is checked against the one the caller announced before the upload completes;
botocore sends each part's CRC32, which the endpoint verifies (AWS does; moto
does not). Any failure aborts the multipart upload so the
endpoint keeps no parts; an abort that fails too (the endpoint is down) stays
recorded for `storage.abort_stale_uploads`.
"""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from apps.core.errors import OpsError

from .client import S3, StorageError
from .models import MultipartUpload

log = logging.getLogger(__name__)
MIB = 1024 * 1024
MAX_PARTS = 10_000  # S3's limit per multipart upload: an unknown-length stream can reach 10,000 x STORAGE_PART_SIZE


class SourceInterrupted(StorageError):
    """The bytes stopped coming (the browser went away, a read failed)."""

    status_code = 400


class ChecksumMismatch(StorageError):
    """The bytes received are not the bytes announced (size or SHA-256)."""

    status_code = 422

    def __init__(self, message: str, actual: str = ""):
        super().__init__(message, code="BadDigest")
        self.actual = actual


@dataclass
class Written:
    size: int
    sha256: str
    etag: str
    version_id: str | None
    parts: int


def parts_of(chunks: Iterable[bytes], part_size: int) -> Iterator[bytearray]:
    """Re-cut chunks of any size into parts of exactly `part_size` (the last may be shorter; at least
    one part). Each part is filled in place and handed over, so no byte is copied twice."""
    part, filled, yielded = bytearray(part_size), 0, False
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            n = min(len(view), part_size - filled)
            part[filled : filled + n] = view[:n]
            filled, view = filled + n, view[n:]
            if filled == part_size:
                yield part
                part, filled, yielded = bytearray(part_size), 0, True
    if filled or not yielded:
        del part[filled:]
        yield part


def part_size_for(size: int | None, floor: int | None = None) -> int:
    """`floor` (STORAGE_PART_SIZE by default), or bigger (whole MiB) when the size is known and would need
    more than S3's 10,000 parts."""
    needed = -(-size // MAX_PARTS) if size else 0
    return max(floor or settings.STORAGE_PART_SIZE, -(-needed // MIB) * MIB)


def write_stream(
    s3: S3,
    bucket: str,
    key: str,
    chunks: Iterable[bytes],
    *,
    extra: dict,
    expected_sha256: str | None = None,
    expected_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Written:
    """Store the bytes of `chunks` as `bucket/key`: one PUT if they fit in one part, else multipart."""
    parts = parts_of(chunks, part_size_for(expected_size))
    first = next(parts)
    second = next(parts, None)
    check = _Check(expected_sha256, expected_size)
    if second is None:
        check.add(first)
        check.verify()
        response = s3.call("put_object", Bucket=bucket, Key=key, Body=first, **extra)
        return Written(check.size, check.sha256, response["ETag"].strip('"'), response.get("VersionId"), 1)

    head = [first, second]
    del first, second  # only `head` holds them, until each is handed out

    def all_parts():
        while head:
            yield head.pop(0)
        yield from parts

    return _multipart(s3, bucket, key, all_parts(), extra, check, progress)


class _Check:
    """What is verified of an upload: its size and the SHA-256 of the whole."""

    def __init__(self, expected_sha256: str | None, expected_size: int | None):
        self.expected_sha256 = (expected_sha256 or "").lower() or None
        self.expected_size = expected_size
        self.digest = hashlib.sha256()
        self.size = 0

    def add(self, part: bytes) -> None:
        self.digest.update(part)
        self.size += len(part)

    @property
    def sha256(self) -> str:
        return self.digest.hexdigest()

    def verify(self) -> None:
        if self.expected_size is not None and self.size != self.expected_size:
            raise ChecksumMismatch(f"Received {self.size} bytes where {self.expected_size} were announced.", actual=self.sha256)
        if self.expected_sha256 and self.sha256 != self.expected_sha256:
            raise ChecksumMismatch(
                f"The SHA-256 of the bytes received ({self.sha256}) is not the expected {self.expected_sha256}.", actual=self.sha256
            )


def _multipart(s3: S3, bucket: str, key: str, parts: Iterator[bytes], extra: dict, check: _Check, progress) -> Written:
    created = s3.call("create_multipart_upload", Bucket=bucket, Key=key, **extra)
    upload = MultipartUpload.objects.create(connection=s3.conn, bucket=bucket, key=key, upload_id=created["UploadId"])
    concurrency = settings.STORAGE_UPLOAD_CONCURRENCY
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="s3-part")
    # One thread hashes the parts in order while the next part arrives (hashlib releases the GIL).
    hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
    inflight: deque = deque()
    sent: list[dict] = []

    def collect():
        number, future = inflight.popleft()
        sent.append({"PartNumber": number, "ETag": future.result()["ETag"]})

    received = 0
    try:
        for number, part in enumerate(parts, 1):
            hasher.submit(check.add, part)
            received += len(part)
            while len(inflight) >= concurrency:
                collect()
            params = {"Bucket": bucket, "Key": key, "UploadId": upload.upload_id, "PartNumber": number, "Body": part}
            inflight.append((number, pool.submit(s3.call, "upload_part", **params)))
            del part, params
            if progress:
                progress(received)
        while inflight:
            collect()
        hasher.shutdown(wait=True)
        check.verify()
        done = s3.call("complete_multipart_upload", Bucket=bucket, Key=key, UploadId=upload.upload_id, MultipartUpload={"Parts": sent})
    except BaseException as exc:
        pool.shutdown(wait=True, cancel_futures=True)  # no part may land after the abort
        abort(s3, upload, exc)
        raise
    finally:
        pool.shutdown(wait=True)
        hasher.shutdown(wait=True)
    upload.delete()
    return Written(check.size, check.sha256, done["ETag"].strip('"'), done.get("VersionId"), len(sent))


def abort(s3: S3, upload: MultipartUpload, cause: BaseException) -> None:
    """Abort a multipart upload after `cause` (recorded for a later retry when the endpoint is down); says so in its message."""
    try:
        s3.call("abort_multipart_upload", Bucket=upload.bucket, Key=upload.key, UploadId=upload.upload_id, retry=True)
    except OpsError as exc:
        log.warning("could not abort multipart upload %s of %s/%s: %s", upload.upload_id, upload.bucket, upload.key, exc.message)
        upload.abort_failed_at, upload.error = timezone.now(), exc.message[:2000]
        upload.save(update_fields=["abort_failed_at", "error"])
        note = " The multipart upload could not be aborted yet; the console retries until no part is left."
    else:
        upload.delete()
        note = " The multipart upload was aborted: nothing was stored."
    if isinstance(cause, OpsError):
        cause.message += note
        cause.args = (cause.message,)


def abort_recorded(s3: S3, upload: MultipartUpload) -> None:
    """Abort a recorded upload again and forget it once the endpoint has no parts of it."""
    try:
        s3.call("abort_multipart_upload", Bucket=upload.bucket, Key=upload.key, UploadId=upload.upload_id, retry=True)
    except StorageError as exc:
        if exc.code != "NoSuchUpload":
            raise
    upload.delete()
