"""A connection's default encryption on the writes that don't choose one: an upload
through the console (a real uvicorn process) and a backup on a real Celery worker,
checked with HEAD on the real S3 server."""

import hashlib

import pytest

from .conftest import ConsoleSession, make_connection
from .test_backup import run

pytestmark = [pytest.mark.peer, pytest.mark.django_db(transaction=True)]
BODY = b"quarterly numbers\n"


def test_an_upload_that_does_not_choose_gets_the_connection_default(storage_console, client, make_user, moto_server, s3, bucket):
    encrypted = make_connection(moto_server, default_encryption="AES256")
    session = ConsoleSession(storage_console[1], client, make_user("operator"))
    sha = hashlib.sha256(BODY).hexdigest()
    answer = session.upload(encrypted.name, bucket, "default.txt", [BODY], len(BODY), sha)
    assert answer.status_code == 200, answer.text
    assert answer.json()["encryption"] == "AES256"
    assert s3.head_object(Bucket=bucket, Key="default.txt")["ServerSideEncryption"] == "AES256"
    # Choosing "none" overrides the connection's default.
    answer = session.upload(encrypted.name, bucket, "clear.txt", [BODY], len(BODY), sha, encryption="none")
    assert answer.status_code == 200, answer.text
    assert "ServerSideEncryption" not in s3.head_object(Bucket=bucket, Key="clear.txt")


def test_a_backup_is_written_with_the_destination_default(make_user, actor_of, conn, moto_server, s3, bucket, celery_worker):
    vault = f"{bucket}-vault"
    s3.create_bucket(Bucket=vault)
    s3.put_object(Bucket=bucket, Key="data/report.csv", Body=BODY)  # unclassified, unencrypted at the source
    kms = make_connection(moto_server, default_encryption="aws:kms", kms_key_id="alias/ops-backups")
    params = {"connection": conn.name, "bucket": bucket, "prefix": "data/", "dest_connection": kms.name, "dest_bucket": vault,
              "backup_id": "kms"}  # fmt: skip
    run(actor_of(make_user("operator")), "storage.backup_create", params)
    written = [o["Key"] for o in s3.list_objects_v2(Bucket=vault)["Contents"]]
    assert "backups/kms/manifest.jsonl" in written and any(k.startswith("backups/kms/data/") for k in written)
    for key in written:  # the copied object and the manifest (which names every key, its metadata and tags)
        head = s3.head_object(Bucket=vault, Key=key)
        assert head.get("ServerSideEncryption") == "aws:kms", key
        assert head["SSEKMSKeyId"].endswith("alias/ops-backups"), (key, head["SSEKMSKeyId"])


def test_a_backup_listing_confidential_objects_has_an_encrypted_manifest(make_user, actor_of, conn, s3, bucket, celery_worker):
    """No default at the destination: the confidential object's copy and every manifest naming it are encrypted;
    a backup of public objects only stays as the connection says (no encryption)."""
    vault = f"{bucket}-vault"
    s3.create_bucket(Bucket=vault)
    s3.put_object(Bucket=bucket, Key="hr/salaries.csv", Body=BODY, Tagging="classification=confidential")
    s3.put_object(Bucket=bucket, Key="www/index.html", Body=BODY, Tagging="classification=public")
    operator = actor_of(make_user("operator"))
    for prefix, backup_id in (("hr/", "hr"), ("www/", "www")):
        params = {"connection": conn.name, "bucket": bucket, "prefix": prefix, "dest_bucket": vault, "backup_id": backup_id}
        run(operator, "storage.backup_create", params)
    encryption = {o["Key"]: s3.head_object(Bucket=vault, Key=o["Key"]).get("ServerSideEncryption")
                  for o in s3.list_objects_v2(Bucket=vault)["Contents"]}  # fmt: skip
    assert encryption["backups/hr/manifest.jsonl"] == "AES256"
    assert all(v == "AES256" for k, v in encryption.items() if k.startswith("backups/hr/")), encryption
    assert all(v is None for k, v in encryption.items() if k.startswith("backups/www/")), encryption
