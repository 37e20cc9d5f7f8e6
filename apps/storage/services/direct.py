"""Uploads straight to the bucket: the browser sends the parts of a multipart upload
with URLs the console presigns, so no byte passes through a web process.

storage.begin_upload checks the upload like storage.upload does (key, size cap, content
type, classification, encryption, the object it would write over) and starts a
multipart upload with S3 additional checksums (SHA-256); storage.sign_parts presigns
parts whose SHA-256 the browser computed, binding each checksum into the signature;
storage.complete_upload checks again the object it would write over, verifies the
parts the endpoint holds (count, sizes, checksums) against what was announced and
only then completes — otherwise it aborts, and nothing stays behind; storage.abort_upload
gives up. Only the user who began an upload signs, completes or aborts it. An upload
left unfinished is aborted by storage.abort_stale_uploads. The presigned URLs are only
ever in the result: never in the audit log (params only) or the logs.
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from pydantic import BaseModel, Field

from apps.core.errors import PermissionDenied
from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from ..client import MISSING, S3, StorageError, connect
from ..models import MultipartUpload
from ..transfer import MAX_PARTS, ChecksumMismatch, abort, abort_recorded, part_size_for
from .classification import ClassificationGuard, check_write
from .common import BucketRef, Classification, ObjectKey, UploadSize, object_target
from .objects import versioning_of
from .uploads import UploadTarget

PART_URL_SECONDS = 900
SIGN_BATCH = 100
Checksum = Field(pattern=r"^[A-Za-z0-9+/]{43}=$", description="The part's SHA-256, base64 (as in x-amz-checksum-sha256).")


class BeginUploadInput(UploadTarget):
    size: UploadSize


class UploadRef(BucketRef):
    key: ObjectKey
    upload_id: str = Field(min_length=1, max_length=1024, description="The UploadId storage.begin_upload returned.")


class BeginUploadOutput(UploadRef):
    part_size: int = Field(description="Every part but the last is exactly this many bytes.")
    parts: int = Field(description="How many parts the file makes.")
    concurrency: int = Field(description="How many parts to send at once.")
    sign_batch: int = Field(description="How many parts to have presigned per storage.sign_parts request.")


class PartChecksum(BaseModel):
    number: int = Field(ge=1, le=MAX_PARTS)
    sha256: str = Checksum


class SignPartsInput(UploadRef):
    parts: list[PartChecksum] = Field(min_length=1, max_length=SIGN_BATCH)


class SignedPart(BaseModel):
    number: int
    url: str = Field(description="PUT the part's bytes here, before expires_in seconds.")
    headers: dict[str, str] = Field(description="Headers the PUT must send exactly (they are signed).")


class SignPartsOutput(BaseModel):
    parts: list[SignedPart]
    expires_in: int


class CompleteUploadInput(UploadRef):
    parts: list[PartChecksum] = Field(min_length=1, max_length=MAX_PARTS, description="Every part, with the SHA-256 it was signed with.")


class CompleteUploadOutput(BaseModel):
    connection: str
    bucket: str
    key: str
    size: int
    parts: int
    checksum_sha256: str = Field(description="The object's composite SHA-256 (of the parts' SHA-256s), suffixed -<parts>.")
    etag: str
    version_id: str | None


class AbortUploadOutput(BaseModel):
    aborted: bool


def _direct_connection(name: str) -> S3:
    s3 = connect(name)
    if not s3.conn.direct_uploads:
        raise StorageError(
            f"Connection {name} does not take uploads straight from browsers (its direct_uploads is off): upload through the console."
        )
    return s3


def endpoint_origin(connection: str, bucket: str) -> str:
    """The origin (scheme://host[:port]) a browser PUTs this bucket's parts to, for the page's CSP connect-src:
    the connection's endpoint as configured, with the bucket in the host under virtual addressing."""
    url = connect(connection).client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "-"}, ExpiresIn=1)
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _recorded(s3: S3, params: UploadRef, ctx: Context) -> MultipartUpload:
    upload = MultipartUpload.objects.filter(
        connection=s3.conn, bucket=params.bucket, key=params.key, upload_id=params.upload_id, size__isnull=False
    ).first()
    if upload is None:
        raise StorageError(
            f"There is no direct upload {params.upload_id[:12]}… of {params.bucket}/{params.key} in progress: start it again.",
            code="NoSuchUpload",
        )
    if upload.started_by_id is None or upload.started_by_id != ctx.actor.user_id:
        raise PermissionDenied(
            f"The upload {params.upload_id[:12]}… of {params.bucket}/{params.key} was begun by someone else: "
            f"only they sign its parts, complete or abort it."
        )
    return upload


def _part_count(upload: MultipartUpload) -> int:
    return max(1, -(-upload.size // upload.part_size))


def _expected_size(upload: MultipartUpload, number: int) -> int:
    return upload.part_size if number < _part_count(upload) else upload.size - upload.part_size * (_part_count(upload) - 1)


def sign_batch(parts: int, concurrency: int) -> int:
    """Parts presigned per storage.sign_parts request: at least as many as go at once (a round of PUTs never
    waits on two signing requests), yet at most ~50 requests per upload (each is an audited, rate-limited
    write), and at most SIGN_BATCH."""
    return min(SIGN_BATCH, max(8, concurrency, -(-parts // 50)))


@operation("storage.begin_upload", risk=Risk.WRITE, target=object_target)
def begin_upload(ctx: Context, params: BeginUploadInput) -> BeginUploadOutput:
    """Start an upload that the browser sends straight to the bucket (connections with direct_uploads on):
    the same checks as storage.upload (key, size cap, content type, classification, encryption), then a
    multipart upload with SHA-256 checksums. Writing over an object whose deletion needs approval (unless
    the bucket keeps versions), or lowering an object's classification, is refused here and again on
    completion. Next: storage.sign_parts, storage.complete_upload."""
    s3 = _direct_connection(params.connection)
    part_size = part_size_for(params.size, settings.STORAGE_DIRECT_PART_SIZE)
    check_write(s3, params.bucket, params.key, params.classification)
    args = params.write_args(s3, ctx.actor.name)
    created = s3.call("create_multipart_upload", Bucket=params.bucket, Key=params.key, ChecksumAlgorithm="SHA256", **args)
    upload = MultipartUpload.objects.create(connection=s3.conn, bucket=params.bucket, key=params.key, upload_id=created["UploadId"],
                                            size=params.size, part_size=part_size, classification=params.classification,
                                            started_by=ctx.actor.user)  # fmt: skip
    return BeginUploadOutput(
        connection=params.connection,
        bucket=params.bucket,
        key=params.key,
        upload_id=upload.upload_id,
        part_size=part_size,
        parts=_part_count(upload),
        concurrency=settings.STORAGE_DIRECT_UPLOAD_CONCURRENCY,
        sign_batch=sign_batch(_part_count(upload), settings.STORAGE_DIRECT_UPLOAD_CONCURRENCY),
    )


@operation("storage.sign_parts", risk=Risk.WRITE, target=object_target)
def sign_parts(ctx: Context, params: SignPartsInput) -> SignPartsOutput:
    """Presign up to 100 parts of a direct upload, each bound to the SHA-256 the browser computed for it.
    The URLs are credentials for those parts: use them, never log them."""
    s3 = _direct_connection(params.connection)
    upload = _recorded(s3, params, ctx)
    count = _part_count(upload)
    if beyond := [p.number for p in params.parts if p.number > count]:
        raise StorageError(f"This upload has {count} parts: there is no part {beyond[0]}.")
    expires = min(PART_URL_SECONDS, settings.STORAGE_PRESIGN_MAX_SECONDS)
    MultipartUpload.objects.filter(pk=upload.pk).update(signed_at=timezone.now())
    signed = []
    for part in params.parts:
        url, headers = s3.presign_part(upload.bucket, upload.key, upload.upload_id, part.number, part.sha256, expires)
        signed.append(SignedPart(number=part.number, url=url, headers=headers))
    return SignPartsOutput(parts=signed, expires_in=expires)


def _verify_parts(s3: S3, upload: MultipartUpload, declared: dict[int, str]) -> tuple[list[dict], bool]:
    """The parts the endpoint holds, checked against the announced size and the declared checksums;
    returns them for CompleteMultipartUpload, and whether the endpoint reported their checksums."""
    count = _part_count(upload)
    if sorted(declared) != list(range(1, count + 1)):
        raise ChecksumMismatch(f"The upload has {count} parts; the browser declared checksums for {len(declared)} of them.")
    held = []
    for page in s3.pages("list_parts", "PartNumberMarker", "NextPartNumberMarker", Bucket=upload.bucket, Key=upload.key,
                         UploadId=upload.upload_id):  # fmt: skip
        held += page.get("Parts", [])
    if [p["PartNumber"] for p in held] != list(range(1, count + 1)):
        raise ChecksumMismatch(f"The endpoint holds {len(held)} of the {count} parts: some were not uploaded.")
    for part in held:
        number, expected = part["PartNumber"], _expected_size(upload, part["PartNumber"])
        if part["Size"] != expected:
            raise ChecksumMismatch(f"Part {number} is {part['Size']} bytes where {expected} were announced.")
        if part.get("ChecksumSHA256") not in (None, declared[number]):
            raise ChecksumMismatch(f"Part {number}'s SHA-256 on the endpoint is not the one the browser declared.")
    reported = all(p.get("ChecksumSHA256") for p in held)
    return [{"PartNumber": p["PartNumber"], "ETag": p["ETag"], "ChecksumSHA256": declared[p["PartNumber"]]} for p in held], reported


def composite_sha256(checksums: list[str]) -> str:
    """S3's checksum of a multipart object: SHA-256 of the parts' SHA-256s, base64, `-<parts>`."""
    digest = hashlib.sha256(b"".join(base64.b64decode(c) for c in checksums)).digest()
    return f"{base64.b64encode(digest).decode()}-{len(checksums)}"


@operation("storage.complete_upload", risk=Risk.WRITE, target=object_target)
def complete_upload(ctx: Context, params: CompleteUploadInput) -> CompleteUploadOutput:
    """Finish a direct upload: the parts on the endpoint must be all there, of the announced sizes, with the
    SHA-256 the browser declared; otherwise the upload is aborted (nothing is stored) and the error says why."""
    s3 = _direct_connection(params.connection)
    upload = _recorded(s3, params, ctx)
    declared = {p.number: p.sha256 for p in params.parts}
    expected = composite_sha256([declared[n] for n in sorted(declared)])
    try:
        # The object may have appeared (or been reclassified) since storage.begin_upload checked.
        check_write(s3, upload.bucket, upload.key, Classification(upload.classification) if upload.classification else None)
        parts, reported = _verify_parts(s3, upload, declared)
        if not reported:
            _refuse_unverified_overwrite(s3, upload)
        done = s3.call("complete_multipart_upload", Bucket=upload.bucket, Key=upload.key, UploadId=upload.upload_id,
                       MultipartUpload={"Parts": parts})  # fmt: skip
    except (ChecksumMismatch, ClassificationGuard, UnverifiedOverwrite) as exc:
        abort(s3, upload, exc)
        raise
    except StorageError as exc:
        if exc.code in ("BadDigest", "InvalidPart"):  # the endpoint itself found a part that does not match
            abort(s3, upload, exc)
        raise
    upload.delete()
    if not reported:
        _verify_object(s3, upload, done.get("VersionId"), expected)
    return CompleteUploadOutput(
        connection=params.connection,
        bucket=upload.bucket,
        key=upload.key,
        size=upload.size,
        parts=len(parts),
        checksum_sha256=expected,
        etag=done["ETag"].strip('"'),
        version_id=done.get("VersionId"),
    )


class UnverifiedOverwrite(StorageError):
    """A completion that could only be checked after it had replaced an object no version keeps."""

    status_code = 409


def _refuse_unverified_overwrite(s3: S3, upload: MultipartUpload) -> None:
    """An endpoint whose ListParts does not report part checksums lets the bytes be checked only once the
    object is complete, and a mismatch then removes it: harmless for a new key, or where the bucket keeps
    the version it replaced; fatal to the object replaced in a bucket without versions. Refused there."""
    if s3.optional("head_object", tuple(MISSING), Bucket=upload.bucket, Key=upload.key) is None:
        return
    if versioning_of(s3, upload.bucket) == "Enabled":
        return
    raise UnverifiedOverwrite(
        f"{s3.conn.name} does not report the parts' SHA-256 before completion, and {upload.bucket}/{upload.key} exists in a "
        f"bucket that keeps no versions: a mismatch found afterwards would cost that object. Upload through the console "
        f"(it checks the bytes before completing), or under another key."
    )


def _verify_object(s3: S3, upload: MultipartUpload, version_id: str | None, expected: str) -> None:
    """For endpoints whose ListParts does not report part checksums: the object's composite checksum,
    computed by the endpoint from the bytes it holds, must be the declared one; else the object is removed."""
    extra = {"VersionId": version_id} if version_id else {}
    attributes = s3.call("get_object_attributes", Bucket=upload.bucket, Key=upload.key, ObjectAttributes=["Checksum"], **extra)
    actual = attributes.get("Checksum", {}).get("ChecksumSHA256")
    if actual and actual.split("-")[0] == expected.split("-")[0]:  # some endpoints suffix -<parts>, some do not
        return
    s3.call("delete_object", Bucket=upload.bucket, Key=upload.key, retry=True, **extra)
    why = "does not report SHA-256 checksums" if not actual else "holds parts whose SHA-256 is not the one the browser declared"
    raise ChecksumMismatch(f"The endpoint {why}: the uploaded object was removed; nothing was stored.", actual=actual or "")


@operation("storage.abort_upload", risk=Risk.WRITE, target=object_target)
def abort_upload(ctx: Context, params: UploadRef) -> AbortUploadOutput:
    """Give up a direct upload: the endpoint drops the parts already sent."""
    s3 = _direct_connection(params.connection)
    abort_recorded(s3, _recorded(s3, params, ctx))
    return AbortUploadOutput(aborted=True)
