"""Bucket-level operations on a real S3 server: lifecycle rules (validated, risky
when they expire data), the compliance report (page, CSV, JSON), and the
connections themselves (credentials encrypted, never shown again)."""

import csv
import io
import json

import pytest
from django.db import connection as db

from apps.audit.models import AuditEvent
from apps.core.errors import InvalidInput, PermissionDenied
from apps.core.gateway import invoke
from apps.storage.models import Connection

pytestmark = [pytest.mark.peer, pytest.mark.django_db]

TIERING = {
    "id": "tiering",
    "prefix": "logs/",
    "transitions": [{"days": 30, "storage_class": "STANDARD_IA"}, {"days": 90, "storage_class": "GLACIER"}],
    "abort_incomplete_multipart_days": 7,
}


def test_lifecycle_rules_are_validated_applied_and_read_back(make_user, actor_of, conn, s3, bucket):
    actor = actor_of(make_user("operator"))
    ref = {"connection": conn.name, "bucket": bucket}
    assert invoke("storage.lifecycle_get", actor, ref).result.rules == []
    outcome = invoke("storage.lifecycle_put", actor, {**ref, "rules": [TIERING]})
    assert outcome.status == "ok"  # moving data to cheaper classes deletes nothing: no approval
    rule = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]
    assert rule["ID"] == "tiering" and rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert [(t["Days"], t["StorageClass"]) for t in rule["Transitions"]] == [(30, "STANDARD_IA"), (90, "GLACIER")]
    read = invoke("storage.lifecycle_get", actor, ref).result.rules
    assert read[0].model_dump() == {**TIERING, "enabled": True, "expiration_days": None, "noncurrent_transitions": [],
                                    "noncurrent_expiration_days": None, "transitions": TIERING["transitions"]}  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"id": "empty"}, "at least one action"),
        ({"id": "ia", "transitions": [{"days": 10, "storage_class": "STANDARD_IA"}]}, "at least 30 days"),
        (
            {"id": "order", "transitions": [{"days": 90, "storage_class": "GLACIER"}, {"days": 30, "storage_class": "STANDARD_IA"}]},
            "increasing",
        ),
        ({"id": "late", "transitions": [{"days": 60, "storage_class": "GLACIER"}], "expiration_days": 30}, "after the last transition"),
    ],
)
def test_invalid_lifecycle_rules_are_refused(make_user, actor_of, conn, bucket, rule, message):
    with pytest.raises(InvalidInput, match=message):
        invoke("storage.lifecycle_put", actor_of(make_user("operator")), {"connection": conn.name, "bucket": bucket, "rules": [rule]})


def test_rules_that_expire_data_wait_for_approval(make_user, actor_of, conn, s3, bucket):
    rule = {"id": "expire", "expiration_days": 365}
    outcome = invoke("storage.lifecycle_put", actor_of(make_user("operator")), {"connection": conn.name, "bucket": bucket, "rules": [rule]})
    assert outcome.status == "pending"
    assert invoke("storage.lifecycle_get", actor_of(make_user("viewer")), {"connection": conn.name, "bucket": bucket}).result.rules == []


@pytest.fixture
def report_buckets(s3, bucket):
    """`bucket` is well kept; `<bucket>-lax` has unclassified and unencrypted restricted objects."""
    s3.put_bucket_encryption(
        Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True))  # fmt: skip
    abort_rule = {
        "ID": "abort",
        "Filter": {"Prefix": ""},
        "Status": "Enabled",
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    }
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [abort_rule]})
    s3.put_object(Bucket=bucket, Key="ok/secret.txt", Body=b"s", ServerSideEncryption="AES256", Tagging="classification=restricted")
    s3.put_object(Bucket=bucket, Key="ok/readme.txt", Body=b"r", Tagging="classification=public")
    lax = f"{bucket}-lax"
    s3.create_bucket(Bucket=lax)
    s3.put_bucket_policy(Bucket=lax, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{lax}/*"}]}))  # fmt: skip
    s3.put_object(Bucket=lax, Key="=cmd|calc.txt", Body=b"x", Tagging="classification=restricted")
    s3.put_object(Bucket=lax, Key="untagged.txt", Body=b"x")
    return bucket, lax


def test_compliance_report_shows_protection_classification_and_encryption(make_user, actor_of, conn, report_buckets):
    good, lax = report_buckets
    report = invoke("storage.compliance_report", actor_of(make_user("viewer")), {"connection": conn.name, "buckets": [good, lax]}).result
    rows = {r.bucket: r for r in report.buckets}
    assert rows[good].status == "pass" and rows[good].findings == []
    assert (rows[good].default_encryption, rows[good].versioning, rows[good].public_access_block) == ("AES256", "Enabled", "all blocked")
    assert rows[good].classification_coverage == 100.0 and rows[good].by_classification["restricted"] == 1
    assert rows[lax].status == "fail" and rows[lax].policy == "public"
    assert rows[lax].restricted_unencrypted == ["=cmd|calc.txt"]
    assert rows[lax].classified == 1 and rows[lax].objects_checked == 2 and rows[lax].classification_coverage == 50.0
    assert "1 restricted objects are not encrypted" in rows[lax].findings
    assert "the bucket policy allows public access" in rows[lax].findings


def test_compliance_page_and_downloads(client, make_user, conn, report_buckets):
    good, lax = report_buckets
    client.force_login(make_user("viewer"))
    html = client.get(f"/storage/compliance/?connection={conn.name}").content.decode()
    assert f'id="bucket-{lax}"' in html and "restricted objects are not encrypted" in html
    as_csv = client.get(f"/storage/compliance/?connection={conn.name}&format=csv")
    assert as_csv["Content-Type"].startswith("text/csv") and "attachment" in as_csv["Content-Disposition"]
    rows = {r["bucket"]: r for r in csv.DictReader(io.StringIO(as_csv.content.decode()))}
    assert rows[good]["status"] == "pass" and rows[lax]["status"] == "fail"
    assert rows[lax]["restricted_unencrypted"] == "'=cmd|calc.txt"  # a key is never read as a spreadsheet formula
    as_json = json.loads(client.get(f"/storage/compliance/?connection={conn.name}&format=json").content)
    assert {b["bucket"]: b["status"] for b in as_json["buckets"]}[lax] == "fail"
    assert client.get("/storage/compliance/").status_code == 200


def test_connection_credentials_are_stored_encrypted_and_never_shown(client, make_user, actor_of, moto_server, s3, bucket):
    admin = make_user("admin")
    params = {"name": "vault-s3", "endpoint_url": moto_server, "addressing_style": "path", "credentials": "stored",
              "access_key_id": "AKIASECRETID", "secret_access_key": "super-secret-value"}  # fmt: skip
    invoke("storage.connection_save", actor_of(admin), params)
    with db.cursor() as cursor:
        cursor.execute("SELECT access_key_id, secret_access_key FROM storage_connection WHERE name = %s", ["vault-s3"])
        raw = " ".join(cursor.fetchone())
    assert "super-secret-value" not in raw and "AKIASECRETID" not in raw
    assert bucket in [b.name for b in invoke("storage.buckets", actor_of(admin), {"connection": "vault-s3"}).result.buckets]
    event = AuditEvent.objects.filter(operation="storage.connection_save").latest("seq")
    assert "super-secret-value" not in json.dumps(event.params) and event.params["secret_access_key"] == "[redacted]"
    client.force_login(admin)
    for url in ("/storage/", "/storage/c/vault-s3/edit/", "/operations/storage.connections/"):
        assert "super-secret-value" not in client.get(url).content.decode()
    # Saving again without secrets keeps the stored ones.
    invoke("storage.connection_save", actor_of(admin), {**params, "access_key_id": None, "secret_access_key": None})
    assert Connection.objects.get(name="vault-s3").secret_access_key == "super-secret-value"
    with pytest.raises(PermissionDenied):
        invoke("storage.connection_save", actor_of(make_user("operator")), params)


def test_environment_credentials_are_read_from_named_variables(make_user, actor_of, moto_server, bucket, monkeypatch):
    admin = actor_of(make_user("admin"))
    invoke(
        "storage.connection_save",
        admin,
        {"name": "from-env", "endpoint_url": moto_server, "addressing_style": "path", "env_prefix": "VAULT_S3"},
    )
    from apps.storage.client import StorageError

    with pytest.raises(StorageError, match="VAULT_S3_ACCESS_KEY_ID and VAULT_S3_SECRET_ACCESS_KEY"):
        invoke("storage.buckets", admin, {"connection": "from-env"})
    monkeypatch.setenv("VAULT_S3_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("VAULT_S3_SECRET_ACCESS_KEY", "secret")
    assert bucket in [b.name for b in invoke("storage.buckets", admin, {"connection": "from-env"}).result.buckets]


def test_storage_pages_have_empty_states(client, make_user):
    client.force_login(make_user("admin"))
    assert "No storage connections yet" in client.get("/storage/").content.decode()
    assert "No storage connections yet" in client.get("/storage/compliance/").content.decode()
