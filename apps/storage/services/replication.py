"""storage.replicate: copy a prefix to another bucket or connection, only what changed.

An object is unchanged when the destination has the same size and the same
checksum: the same ETag, or the source ETag recorded on the replica when the
console copied it (multipart uploads get a new ETag on the other side). Both
listings come sorted, so they are merged in one pass without holding either.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel, Field

from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from ..client import S3, StorageError, connect
from ..transfer import write_stream
from .classification import ClassificationGuard, check_write
from .common import CLASSIFICATION_TAG, SHA256_META, BucketName, BucketRef, ConnectionName, Prefix, classification_of, tags_of, write_args

SOURCE_ETAG_META = "replica-source-etag"


class ReplicateInput(BucketRef):
    prefix: Prefix = ""
    dest_connection: ConnectionName | None = Field(None, description="Default: the same connection.")
    dest_bucket: BucketName
    dest_prefix: Prefix | None = Field(None, description="Default: the same prefix as the source.")
    dry_run: bool = Field(False, description="Only report what would be copied.")


class ReplicateOutput(BaseModel):
    examined: int
    copied: int = Field(description="Objects copied (or that would be, in a dry run).")
    unchanged: int
    bytes_copied: int
    dry_run: bool
    keys: list[str] = Field(description="The first 500 keys copied (or to copy).")
    refused: list[str] = Field(
        default_factory=list,
        description="The first 500 objects not copied because the copy would destroy a protected object or lower its classification.",
    )


def _pairs(src: S3, dst: S3, params: ReplicateInput, dest_prefix: str) -> Iterator[tuple[dict, dict | None]]:
    """(source object, destination object or None), walking both sorted listings together."""
    dest_iter = dst.objects(params.dest_bucket, dest_prefix)
    current = next(dest_iter, None)
    for obj in src.objects(params.bucket, params.prefix):
        relative = obj["Key"][len(params.prefix) :]
        while current is not None and current["Key"][len(dest_prefix) :] < relative:
            current = next(dest_iter, None)
        match = current if current is not None and current["Key"][len(dest_prefix) :] == relative else None
        yield obj, match


def _unchanged(dst: S3, bucket: str, obj: dict, replica: dict | None) -> bool:
    if replica is None or replica["Size"] != obj["Size"]:
        return False
    if replica.get("ETag") == obj.get("ETag"):
        return True
    head = dst.call("head_object", Bucket=bucket, Key=replica["Key"])
    return head.get("Metadata", {}).get(SOURCE_ETAG_META) == obj.get("ETag", "").strip('"')


def _copy(src: S3, dst: S3, params: ReplicateInput, obj: dict, dest_key: str) -> int:
    """Copy one object (or, in a dry run, only check that it may be copied); the bytes it copies."""
    key = obj["Key"]
    tags = tags_of(src, params.bucket, key)
    check_write(dst, params.dest_bucket, dest_key, classification_of(tags))
    if params.dry_run:
        return obj["Size"]
    response, chunks = src.open(params.bucket, key)
    metadata = {**response.get("Metadata", {}), SOURCE_ETAG_META: response.get("ETag", "").strip('"')}
    classification = tags.pop(CLASSIFICATION_TAG, None)
    extra = write_args(dst, classification=classification, metadata=metadata, content_type=response.get("ContentType", ""), tags=tags)
    expected = response.get("Metadata", {}).get(SHA256_META)
    written = write_stream(
        dst, params.dest_bucket, dest_key, chunks, extra=extra, expected_sha256=expected, expected_size=response["ContentLength"]
    )
    return written.size


@operation(
    "storage.replicate",
    risk=Risk.WRITE,
    long=True,
    target=lambda p: (
        f"{p.connection}:{p.bucket}/{p.prefix} → {p.dest_connection or p.connection}:{p.dest_bucket}/{p.dest_prefix or p.prefix}"
    ),
)
def replicate(ctx: Context, params: ReplicateInput) -> ReplicateOutput:
    """Copy the objects under a prefix to another bucket or connection, incrementally: only objects whose
    size or checksum differ are copied (metadata, tags and classification go along). `dry_run` reports
    what would be copied. Extra objects at the destination are left alone; so are destination objects a copy
    would destroy (their deletion needs approval, no versioning) or lower the classification of (`refused`)."""
    src = connect(params.connection)
    dst = connect(params.dest_connection or params.connection)
    dest_prefix = params.prefix if params.dest_prefix is None else params.dest_prefix
    if dst.conn.pk == src.conn.pk and params.dest_bucket == params.bucket and dest_prefix.startswith(params.prefix):
        raise StorageError("The destination lies inside the source prefix: the copies would be copied again. Choose another prefix.")
    out = ReplicateOutput(examined=0, copied=0, unchanged=0, bytes_copied=0, dry_run=params.dry_run, keys=[])
    total = sum(1 for _ in src.objects(params.bucket, params.prefix))
    for obj, replica in _pairs(src, dst, params, dest_prefix):
        out.examined += 1
        if _unchanged(dst, params.dest_bucket, obj, replica):
            out.unchanged += 1
        else:
            dest_key = dest_prefix + obj["Key"][len(params.prefix) :]
            try:
                out.bytes_copied += _copy(src, dst, params, obj, dest_key)
            except ClassificationGuard as exc:
                ctx.log(exc.message, level="warning")
                out.refused += [obj["Key"]][: 500 - len(out.refused)]
            else:
                out.copied += 1
                out.keys += [obj["Key"]][: 500 - len(out.keys)]
        if out.examined % 20 == 0:
            ctx.progress(100 * out.examined / max(total, out.examined), f"{out.examined} of {total} examined, {out.copied} copied")
    verb = "would copy" if params.dry_run else "copied"
    ctx.log(f"{out.examined} objects examined; {verb} {out.copied} ({out.bytes_copied} bytes); {out.unchanged} unchanged")
    return out
