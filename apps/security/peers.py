"""Scan sources owned by other apps: an image on an infrastructure environment's
engine, and the objects of a storage connection's bucket.

A scan reads them on behalf of the person who asked, so it needs what the
owning app's own operations need (the owning app's rules, whatever they
become): the image is inspected through `infrastructure.image` (the gateway:
its permission, rate limit and audit), and a bucket scan needs the permissions
of `storage.list` and `storage.fetch`. The bytes then come through the owning
app's connector (its circuit breaker, timeouts and error messages), streamed:
an image is never held whole, an object is read in windows up to the size cap.
"""

from __future__ import annotations

import io

from django.conf import settings

from apps.core import operations
from apps.core.errors import PermissionDenied
from apps.core.gateway import invoke
from apps.core.jobs import Context
from apps.infrastructure.client import Engine
from apps.infrastructure.services.environments import environment_named
from apps.infrastructure.services.images import ImageInfo
from apps.storage.client import S3, StorageError

from . import images
from .errors import ScanError
from .scanning import ChunkStream, Outcome, Progress, ReadProgress, secret_observation
from .secretscan.engine import SecretScanner

BUCKET_READS = ("storage.list", "storage.fetch")
GONE = ("NoSuchKey", "404", "NotFound")

# --- an image on an environment's engine --------------------------------------------------


def inspect_image(ctx: Context, environment: str, reference: str) -> ImageInfo:
    """The image, inspected through the infrastructure app's gateway as the scan's requester."""
    params = {"environment": environment, "image": reference}
    return invoke("infrastructure.image", ctx.actor, params, ctx.channel, request_id=ctx.request_id).result


def scan_engine_image(info: ImageInfo, reference: str, scanner: SecretScanner, progress: Progress) -> images.ImageScan:
    """Stream the image by id (the bytes inspected, whatever its tag points to meanwhile) as a
    `docker save` archive into the tar scanner."""
    with Engine(environment_named(info.environment)) as engine:
        stream = ReadProgress(ChunkStream(engine.save_image(info.id)), info.size, progress)
        return images.scan_tar_stream(stream, scanner, reference, tags=info.tags)


# --- objects of a bucket ----------------------------------------------------------------


def require_bucket_reads(actor) -> None:
    """Reading objects' bytes is what storage.fetch does: the same permissions, or no scan."""
    for name in BUCKET_READS:
        op = operations.get(name)
        if not actor.has_perm(op.permission):
            raise PermissionDenied(
                f"{actor.name} may not scan a bucket: reading its objects needs the {op.permission} permission (as {name} does)."
            )


def secrets_in_bucket(s3: S3, bucket: str, prefix: str, scanner: SecretScanner, progress: Progress) -> Outcome:
    """Every object under the prefix (latest versions), skipped like files are (size cap, binary
    suffixes and content, lockfiles, allow-listed keys); findings are located as s3://bucket/key."""
    out = Outcome()
    listed = _listing(s3, bucket, prefix, progress)
    wanted = []
    for key, size in listed:
        reason = scanner.skip_reason(key, size)
        if reason:
            out.skip(reason)
        else:
            wanted.append((key, size))
    total, done = sum(size for _, size in wanted) or 1, 0
    for key, size in wanted:
        _scan_object(s3, bucket, key, scanner, out)
        done += size
        progress(done, total, f"{out.files} of {len(wanted)} objects read")
    out.notes.insert(0, f"{len(listed)} objects under s3://{bucket}/{prefix}; {out.files} scanned.")
    return out


def _listing(s3: S3, bucket: str, prefix: str, progress: Progress) -> list[tuple[str, int]]:
    """(key, size) of every object, page by page with the continuation token; bounded."""
    limit, found = settings.SECURITY_BUCKET_MAX_OBJECTS, []
    request = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": settings.SECURITY_BUCKET_PAGE_SIZE}
    for page in s3.pages("list_objects_v2", "ContinuationToken", "NextContinuationToken", **request):
        # "folder/" placeholders some tools create hold nothing
        found.extend((o["Key"], o["Size"]) for o in page.get("Contents", []) if not (o["Key"].endswith("/") and o["Size"] == 0))
        if len(found) > limit:
            raise ScanError(
                f"s3://{bucket}/{prefix} holds more than {limit} objects: scan a narrower prefix (or raise SECURITY_BUCKET_MAX_OBJECTS)."
            )
        progress(0, 1, f"listing: {len(found)} objects")
    return found


def _scan_object(s3: S3, bucket: str, key: str, scanner: SecretScanner, out: Outcome) -> None:
    try:
        response, chunks = s3.open(bucket, key)
    except StorageError as exc:
        if exc.code in GONE:
            out.skip("deleted during the scan")
            return
        out.skip("unreadable")  # e.g. a bucket policy denying this key: the other objects still count
        if out.skipped["unreadable"] <= 5:
            out.notes.append(exc.message)
        return
    try:
        if response["ContentLength"] > scanner.max_file_bytes:  # grew since it was listed
            out.skip(f"larger than {scanner.max_file_bytes >> 20} MB")
            return
        hits = scanner.scan_stream(f"s3://{bucket}/{key}", io.BufferedReader(ChunkStream(chunks)))
    finally:
        chunks.close()
        response["Body"].close()
    if hits is None:
        out.skip("binary")
        return
    out.files += 1
    out.bytes += response["ContentLength"]
    out.observations.extend(secret_observation(h) for h in hits)
