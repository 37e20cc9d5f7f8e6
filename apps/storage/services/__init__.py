"""The storage operations (S3-compatible buckets through boto3), one module per area.
Importing this package registers them all with the operation registry."""

from . import (  # noqa: F401
    analysis,
    backups,
    classification,
    compliance,
    connections,
    deletes,
    direct,
    lifecycle,
    objects,
    replication,
    restores,
    uploads,
)
