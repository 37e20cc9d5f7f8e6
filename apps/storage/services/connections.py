"""Storage connections: list them (never their secrets), save one, delete one."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

from apps.core.errors import InvalidInput
from apps.core.jobs import Context
from apps.core.operations import Risk, operation
from apps.core.outbound import OutboundRefused
from apps.core.resilience import forget_breaker

from .. import bucket_names
from ..client import StorageError, outbound_guard
from ..models import Connection


class ConnectionInfo(BaseModel):
    name: str
    endpoint_url: str = Field(description="Empty for AWS.")
    region: str
    addressing_style: str
    credentials: str = Field(description="environment or stored.")
    env_prefix: str
    has_stored_credentials: bool
    default_encryption: str = Field(description="AES256, aws:kms, or empty for none.")
    direct_uploads: bool = Field(description="Browsers upload straight to the endpoint (presigned multipart).")


class ConnectionsOutput(BaseModel):
    connections: list[ConnectionInfo]


class NoInput(BaseModel):
    pass


def _info(conn: Connection) -> ConnectionInfo:
    return ConnectionInfo(
        name=conn.name,
        endpoint_url=conn.endpoint_url,
        region=conn.region,
        addressing_style=conn.addressing_style,
        credentials=conn.credentials,
        env_prefix=conn.env_prefix,
        has_stored_credentials=conn.has_stored_credentials,
        default_encryption=conn.default_encryption,
        direct_uploads=conn.direct_uploads,
    )


@operation("storage.connections", risk=Risk.READ)
def connections(ctx: Context, params: NoInput) -> ConnectionsOutput:
    """List the storage connections (S3-compatible endpoints) the console knows; credentials are never shown."""
    return ConnectionsOutput(connections=[_info(c) for c in Connection.objects.all()])


class ConnectionSaveInput(BaseModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9\-]{0,49}$", description="Short name: lower-case letters, digits, dashes.")
    endpoint_url: str = Field(
        "", max_length=200, pattern=r"^(https?://.+)?$", description="Empty for AWS; e.g. https://minio.example:9000."
    )
    region: str = Field("us-east-1", max_length=40)
    addressing_style: Literal["auto", "path", "virtual"] = Field("auto", description="path for most MinIO/Ceph setups.")
    credentials: Literal["environment", "stored"] = Field(
        "environment",
        description="environment: boto3's chain or <env_prefix>_ACCESS_KEY_ID/_SECRET_ACCESS_KEY; stored: kept encrypted here.",
    )
    env_prefix: str = Field("", max_length=60, pattern=r"^([A-Z][A-Z0-9_]*)?$")
    access_key_id: SecretStr | None = Field(None, description="Stored encrypted, never shown again; empty keeps the stored one.")
    secret_access_key: SecretStr | None = Field(None, description="Stored encrypted, never shown again; empty keeps the stored one.")
    default_encryption: Literal["", "AES256", "aws:kms"] = Field("", description="Server-side encryption for writes that don't choose.")
    kms_key_id: str = Field("", max_length=300)
    verify_tls: bool = True
    direct_uploads: bool = Field(
        False,
        description="Browsers upload straight to the endpoint with presigned multipart URLs (the endpoint's CORS must allow "
        "the console's origin, methods PUT, header x-amz-checksum-sha256, and expose ETag); else through the console.",
    )

    @model_validator(mode="after")
    def both_or_neither(self):
        if bool(self.access_key_id and self.access_key_id.get_secret_value()) != bool(
            self.secret_access_key and self.secret_access_key.get_secret_value()
        ):
            raise ValueError("give both the access key id and the secret access key, or neither")
        return self


@operation("storage.connection_save", risk=Risk.WRITE, permission="core.manage_connectors", target=lambda p: p.name)
def connection_save(ctx: Context, params: ConnectionSaveInput) -> ConnectionInfo:
    """Create or update a storage connection. Stored credentials are encrypted at rest and never shown again."""
    conn = Connection.objects.filter(name=params.name).first() or Connection(name=params.name)
    for field in (
        "endpoint_url",
        "region",
        "addressing_style",
        "credentials",
        "env_prefix",
        "default_encryption",
        "kms_key_id",
        "verify_tls",
        "direct_uploads",
    ):
        setattr(conn, field, getattr(params, field))
    if params.access_key_id and params.secret_access_key:
        conn.access_key_id = params.access_key_id.get_secret_value()
        conn.secret_access_key = params.secret_access_key.get_secret_value()
    if params.endpoint_url:
        try:
            outbound_guard().check(params.endpoint_url)
        except OutboundRefused as exc:
            raise InvalidInput({"endpoint_url": exc.message}) from None
    if conn.credentials == Connection.STORED and not conn.has_stored_credentials:
        raise StorageError("Stored credentials were chosen: give the access key id and the secret access key.")
    if conn.credentials == Connection.ENVIRONMENT:
        conn.access_key_id = conn.secret_access_key = ""
    conn.save()
    forget_breaker(f"storage:{conn.name}")
    return _info(conn)


class ConnectionDeleteInput(BaseModel):
    name: str = Field(max_length=50)


class ConnectionDeleteOutput(BaseModel):
    deleted: bool


@operation("storage.connection_delete", risk=Risk.WRITE, permission="core.manage_connectors", target=lambda p: p.name)
def connection_delete(ctx: Context, params: ConnectionDeleteInput) -> ConnectionDeleteOutput:
    """Forget a storage connection and its stored credentials (the buckets themselves are untouched)."""
    deleted, _ = Connection.objects.filter(name=params.name).delete()
    if not deleted:
        raise StorageError(f"There is no storage connection named {params.name!r}.", code="NoSuchConnection")
    forget_breaker(f"storage:{params.name}")
    bucket_names.forget(params.name)
    return ConnectionDeleteOutput(deleted=True)
