# The real S3 server (moto) and connection fixtures of the storage tests, for the checkpoint bucket.
from tests.storage.conftest import bucket, conn, moto_server, s3  # noqa: F401
