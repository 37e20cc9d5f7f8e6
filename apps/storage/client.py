"""The S3 connector: one boto3 client per connection, every request through the
connection's circuit breaker, botocore's exceptions mapped to StorageError with
a message a person can act on. Only the storage services call it."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import boto3
import botocore.exceptions as boto_errors
from botocore.awsrequest import AWSHTTPConnectionPool, AWSHTTPSConnectionPool
from botocore.config import Config
from django.conf import settings

from apps.core.errors import OperationFailed, PeerUnavailable
from apps.core.outbound import Guard, OutboundRefused
from apps.core.resilience import breaker_for, call_through
from apps.core.scrub import scrubbed

from .models import Connection

# Failures of the endpoint itself (count against the breaker); a ClientError is an answer.
PEER_ERRORS = (boto_errors.ConnectionError, boto_errors.HTTPClientError, boto_errors.IncompleteReadError)
TIMEOUTS = (boto_errors.ConnectTimeoutError, boto_errors.ReadTimeoutError)
READ_CHUNK = 1024 * 1024


# Codes meaning "what the request names does not exist": a 404, not a failure.
MISSING = {"NoSuchBucket", "NoSuchKey", "NotFound", "404", "NoSuchVersion", "NoSuchUpload", "NoSuchConnection"}


class StorageError(OperationFailed):
    """An S3 request was refused or cannot be done; the message says what to change."""

    def __init__(self, message: str, code: str = ""):
        super().__init__(message)
        self.code = code
        if code in MISSING:
            self.status_code = 404


def outbound_guard() -> Guard:
    """S3 gateways (MinIO, Ceph) usually live inside: STORAGE_OUTBOUND_ALLOW lists the internal networks they may use."""
    return Guard(settings.STORAGE_OUTBOUND_ALLOW, label="storage endpoints")


_clients: dict[int, tuple[object, object]] = {}
_clients_lock = threading.Lock()


def _credentials(conn: Connection) -> dict:
    if conn.credentials == Connection.STORED:
        if not conn.has_stored_credentials:
            raise StorageError(f"Connection {conn.name} has no stored credentials: enter them again under Storage → Connections.")
        return {"aws_access_key_id": conn.access_key_id, "aws_secret_access_key": conn.secret_access_key}
    if conn.env_prefix:
        names = (f"{conn.env_prefix}_ACCESS_KEY_ID", f"{conn.env_prefix}_SECRET_ACCESS_KEY")
        values = [os.environ.get(n, "") for n in names]
        if not all(values):
            raise StorageError(f"Connection {conn.name} reads its credentials from {names[0]} and {names[1]}, which are not both set.")
        return {"aws_access_key_id": values[0], "aws_secret_access_key": values[1]}
    return {}  # boto3's own chain: AWS_* variables, shared config, instance role


def _boto_client(conn: Connection):
    """A cached boto3 client (thread-safe); rebuilt when the connection was edited."""
    with _clients_lock:
        cached = _clients.get(conn.pk)
        if cached and cached[0] == conn.updated_at:
            return cached[1]
    config = Config(
        region_name=conn.region or None,
        signature_version="s3v4",
        s3={"addressing_style": conn.addressing_style},
        connect_timeout=settings.STORAGE_CONNECT_TIMEOUT,
        read_timeout=settings.STORAGE_READ_TIMEOUT,
        retries={"max_attempts": 3, "mode": "standard"},
        max_pool_connections=max(10, settings.STORAGE_UPLOAD_CONCURRENCY * 2 + 2),
    )
    client = boto3.session.Session().client(
        "s3", endpoint_url=conn.endpoint_url or None, verify=conn.verify_tls, config=config, **_credentials(conn)
    )
    # Pin: every connection botocore opens dials an address the guard just checked (botocore has no
    # public hook for its connection classes, so its session's pool classes are swapped here).
    http_session = client._endpoint.http_session
    http_session._pool_classes_by_scheme = outbound_guard().pool_classes(AWSHTTPConnectionPool, AWSHTTPSConnectionPool)
    http_session._manager.pool_classes_by_scheme = http_session._pool_classes_by_scheme
    # botocore's standard retries stay for throttling and 5xx answers, but a timeout is final: an endpoint that
    # hangs would make every retry wait as long again. Registered first, this handler's False ("no retry") is
    # the answer botocore's endpoint takes (the first that is not None).
    client.meta.events.register_first("needs-retry.s3", _no_retry_after_timeout)
    with _clients_lock:
        _clients[conn.pk] = (conn.updated_at, client)
    return client


def _no_retry_after_timeout(caught_exception=None, **_) -> bool | None:
    return False if isinstance(caught_exception, TIMEOUTS) else None


def _message(conn: Connection, method: str, exc: boto_errors.ClientError, params: dict) -> StorageError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "")) or str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    bucket, key = params.get("Bucket", ""), params.get("Key")
    where = f"{bucket}/{key}" if key is not None else bucket
    action = method.replace("_", " ")
    known = {
        "NoSuchBucket": f"Bucket {bucket!r} does not exist on connection {conn.name}.",
        "NoSuchKey": f"There is no object {key!r} in bucket {bucket!r}.",
        "404": f"There is no object {key!r} in bucket {bucket!r}." if key is not None else f"Bucket {bucket!r} was not found.",
        "NoSuchVersion": f"Object {key!r} has no version {params.get('VersionId')!r}.",
        "AccessDenied": f"Connection {conn.name} may not {action} on {where}: check its credentials' permissions.",
        "403": f"Connection {conn.name} may not {action} on {where}: check its credentials' permissions.",
        "InvalidAccessKeyId": f"The endpoint does not know connection {conn.name}'s access key: update its credentials.",
        "SignatureDoesNotMatch": f"The endpoint refused connection {conn.name}'s secret key: update its credentials.",
        "NoSuchUpload": f"The multipart upload of {where} no longer exists (it was aborted or completed).",
        "InvalidBucketName": f"{bucket!r} is not a valid bucket name.",
        "BucketAlreadyOwnedByYou": f"Bucket {bucket!r} already exists.",
        "EntityTooSmall": "A part of the multipart upload was smaller than the endpoint's minimum part size.",
        "BadDigest": f"The endpoint received different bytes than were sent for {where} (checksum mismatch); nothing was stored.",
    }
    text = known.get(code) or f"{action} on {where} failed on connection {conn.name}: {code} {error.get('Message', '')}".strip()
    return StorageError(text, code=code)


class S3:
    """A connection's S3 endpoint. `call("list_objects_v2", Bucket=...)` returns boto3's response."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.client = _boto_client(conn)
        # What its error texts must never show (see apps.core.scrub).
        self.secrets = tuple(_credentials(conn).values())
        self.breaker = breaker_for(f"storage:{conn.name}")

    def call(self, method: str, *, retry: bool | None = None, **params) -> dict:
        fn = getattr(self.client, method)
        if retry is None:  # reads are idempotent; botocore already retries throttling itself
            retry = method.startswith(("get_", "head_", "list_"))

        def request():
            try:
                return fn(**params)
            except boto_errors.ClientError as exc:
                raise _message(self.conn, method, exc, params) from exc
            except boto_errors.NoCredentialsError:
                raise StorageError(f"Connection {self.conn.name} has no credentials in the environment.") from None
            except boto_errors.HTTPClientError as exc:
                refused = exc.kwargs.get("error")
                if isinstance(refused, OutboundRefused):
                    raise StorageError(f"Connection {self.conn.name}: {refused.message}") from None
                raise

        with scrubbed(*self.secrets):
            return call_through(
                self.breaker,
                request,
                errors=PEER_ERRORS,
                timeouts=TIMEOUTS,
                retry=retry,
                describe=f"S3 endpoint of connection {self.conn.name}",
            )

    def optional(self, method: str, missing: tuple[str, ...], **params) -> dict | None:
        """A bucket setting that may not be configured: None when the endpoint says so."""
        try:
            return self.call(method, **params)
        except StorageError as exc:
            if exc.code in missing:
                return None
            raise

    def open(self, bucket: str, key: str, version_id: str | None = None, chunk_size: int = READ_CHUNK) -> tuple[dict, Iterator[bytes]]:
        """GET an object: its response headers, and its bytes as chunks (read lazily)."""
        extra = {"VersionId": version_id} if version_id else {}
        response = self.call("get_object", Bucket=bucket, Key=key, **extra)
        return response, self._chunks(response["Body"], bucket, key, chunk_size)

    def _chunks(self, body, bucket: str, key: str, chunk_size: int) -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(chunk_size)
        except PEER_ERRORS as exc:
            raise PeerUnavailable(f"Reading {bucket}/{key} from connection {self.conn.name} was interrupted: {exc}") from exc
        finally:
            body.close()

    def presign(self, bucket: str, key: str, version_id: str | None, expires: int) -> str:
        params = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
        return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires)

    def presign_part(self, bucket: str, key: str, upload_id: str, number: int, sha256_b64: str, expires: int) -> tuple[str, dict]:
        """A URL that uploads one part, and the headers its PUT must send: the part's SHA-256 is signed
        in, so the endpoint refuses other bytes (AWS verifies x-amz-checksum-sha256; the signature binds it)."""
        params = {"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": number}
        params |= {"ChecksumAlgorithm": "SHA256", "ChecksumSHA256": sha256_b64}
        url = self.client.generate_presigned_url("upload_part", Params=params, ExpiresIn=expires)
        return url, {"x-amz-checksum-sha256": sha256_b64, "x-amz-sdk-checksum-algorithm": "SHA256"}

    def pages(self, method: str, token_in: str, token_out: str, **params) -> Iterator[dict]:
        """Each page of a listing (list_objects_v2, list_object_versions), one request each."""
        while True:
            page = self.call(method, **params)
            yield page
            if not page.get("IsTruncated"):
                return
            params[token_in] = page[token_out]

    def objects(self, bucket: str, prefix: str = "", start_after: str = "") -> Iterator[dict]:
        """Every object under a prefix, in key order (S3 lists by UTF-8 bytes, like Python's str order)."""
        params = {"Bucket": bucket, "Prefix": prefix, **({"StartAfter": start_after} if start_after else {})}
        for page in self.pages("list_objects_v2", "ContinuationToken", "NextContinuationToken", **params):
            yield from page.get("Contents", [])

    def versions(self, bucket: str, prefix: str = "", key_marker: str = "", delimiter: str = "") -> Iterator[dict]:
        """Every version and delete marker under a prefix, in key order (markers flagged `DeleteMarker`)."""
        params = {"Bucket": bucket, "Prefix": prefix, **({"KeyMarker": key_marker} if key_marker else {})}
        if delimiter:
            params["Delimiter"] = delimiter
        while True:
            page = self.call("list_object_versions", **params)
            entries = [dict(v, DeleteMarker=False) for v in page.get("Versions", [])]
            entries += [dict(m, DeleteMarker=True) for m in page.get("DeleteMarkers", [])]
            yield from sorted(entries, key=lambda e: (e["Key"], not e.get("IsLatest")))
            if not page.get("IsTruncated"):
                return
            params["KeyMarker"], params["VersionIdMarker"] = page["NextKeyMarker"], page["NextVersionIdMarker"]


def connect(name: str) -> S3:
    conn = Connection.objects.filter(name=name).first()
    if conn is None:
        raise StorageError(
            f"There is no storage connection named {name!r}; an admin registers it under Storage → Connections.", code="NoSuchConnection"
        )
    return S3(conn)
