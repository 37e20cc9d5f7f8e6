"""Backups and restores as jobs on a real Celery worker against a real S3 server:
round trip with identical bytes, a tampered backup reported, and a backup that
resumes after the endpoint went away in the middle."""

import hashlib
import json
import time
import uuid

import pytest

from apps.core.gateway import invoke

from .conftest import blocks, make_connection, wait_for_job

pytestmark = [pytest.mark.peer, pytest.mark.django_db(transaction=True)]
MIB = 1024 * 1024
BIG = b"".join(blocks(12 * MIB + 7, b"big"))  # more than one part for the worker (5 MiB parts)


@pytest.fixture
def vault(s3):
    name = f"vault-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def originals(s3, bucket) -> dict[str, bytes]:
    data = {"data/a.txt": b"alpha", "data/ünï code/b.bin": bytes(range(256)) * 4, "data/../c": b"dots", "data/big.bin": BIG}
    for key, body in data.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    s3.put_object_tagging(Bucket=bucket, Key="data/a.txt", Tagging={"TagSet": [{"Key": "classification", "Value": "restricted"}]})
    s3.copy_object(Bucket=bucket, Key="data/a.txt", CopySource={"Bucket": bucket, "Key": "data/a.txt"}, Metadata={"owner": "ops"},
                   MetadataDirective="REPLACE", ContentType="text/plain", TaggingDirective="COPY")  # fmt: skip
    return data


def run(actor, name, params):
    outcome = invoke(name, actor, params)
    assert outcome.status == "queued"
    job = wait_for_job(outcome.job.pk)
    assert job.status == "succeeded", job.error
    return job


def manifest(s3, bucket, root):
    lines = s3.get_object(Bucket=bucket, Key=f"{root}manifest.jsonl")["Body"].read().decode().splitlines()
    return json.loads(lines[0]), [json.loads(line) for line in lines[1:]]


def test_backup_delete_restore_gives_back_identical_bytes(make_user, actor_of, conn, s3, bucket, vault, celery_worker):
    data = originals(s3, bucket)
    etags = {k: s3.head_object(Bucket=bucket, Key=k)["ETag"] for k in data}
    actor = actor_of(make_user("operator"))
    backup = {"connection": conn.name, "bucket": bucket, "prefix": "data/", "dest_bucket": vault, "backup_id": "nightly-1"}
    job = run(actor, "storage.backup_create", backup)
    assert job.result["objects"] == 4 and job.result["copied"] == 4 and job.result["bytes"] == sum(map(len, data.values()))
    header, entries = manifest(s3, vault, "backups/nightly-1/")
    assert header["source"] == {"connection": conn.name, "bucket": bucket, "prefix": "data/"} and header["objects"] == 4
    by_key = {e["key"]: e for e in entries}
    assert set(by_key) == set(data)
    for key, body in data.items():
        assert by_key[key]["size"] == len(body) and by_key[key]["sha256"] == hashlib.sha256(body).hexdigest()
        assert by_key[key]["etag"] == etags[key].strip('"')
    assert by_key["data/a.txt"]["tags"] == {"classification": "restricted"}
    assert job.log_lines.filter(text__contains="manifest written").exists()

    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in data]})
    job = run(actor, "storage.backup_restore", {"connection": conn.name, "bucket": vault, "backup_prefix": "backups/nightly-1/"})
    assert job.result["restored"] == 4 and job.result["mismatches"] == [] and job.result["conflicts"] == []
    for key, body in data.items():
        restored = s3.get_object(Bucket=bucket, Key=key)
        assert restored["Body"].read() == body
        assert restored["Metadata"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert s3.head_object(Bucket=bucket, Key="data/a.txt")["ETag"] == etags["data/a.txt"]
    assert s3.head_object(Bucket=bucket, Key="data/a.txt")["Metadata"]["owner"] == "ops"
    assert s3.get_object_tagging(Bucket=bucket, Key="data/a.txt")["TagSet"] == [{"Key": "classification", "Value": "restricted"}]
    # Run again (as after an interrupted restore): everything is already in place.
    job = run(actor, "storage.backup_restore", {"connection": conn.name, "bucket": vault, "backup_prefix": "backups/nightly-1/"})
    assert job.result["restored"] == 0 and job.result["already_in_place"] == 4


def test_a_tampered_backup_object_is_reported_and_not_restored(make_user, actor_of, conn, s3, bucket, vault, celery_worker):
    data = originals(s3, bucket)
    actor = actor_of(make_user("operator"))
    run(
        actor,
        "storage.backup_create",
        {"connection": conn.name, "bucket": bucket, "prefix": "data/", "dest_bucket": vault, "backup_id": "b"},
    )
    _, entries = manifest(s3, vault, "backups/b/")
    tampered = next(e for e in entries if e["key"] == "data/big.bin")
    s3.put_object(Bucket=vault, Key=tampered["data_key"], Body=BIG[:-1] + b"!")  # same size, one byte changed
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in data]})
    job = run(actor, "storage.backup_restore", {"connection": conn.name, "bucket": vault, "backup_prefix": "backups/b/"})
    assert job.result["restored"] == 3
    assert job.result["mismatches"] == [
        {
            "key": "data/big.bin",
            "expected_sha256": hashlib.sha256(BIG).hexdigest(),
            "actual_sha256": hashlib.sha256(BIG[:-1] + b"!").hexdigest(),
        }
    ]
    assert "data/big.bin" not in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)  # the mismatching multipart upload was aborted


def test_restoring_over_different_content_needs_overwrite_and_approval(make_user, actor_of, conn, s3, bucket, vault, celery_worker):
    originals(s3, bucket)
    actor = actor_of(make_user("operator"))
    run(
        actor,
        "storage.backup_create",
        {"connection": conn.name, "bucket": bucket, "prefix": "data/", "dest_bucket": vault, "backup_id": "c"},
    )
    s3.put_object(Bucket=bucket, Key="data/a.txt", Body=b"changed since")
    job = run(actor, "storage.backup_restore", {"connection": conn.name, "bucket": vault, "backup_prefix": "backups/c/"})
    assert job.result["conflicts"] == ["data/a.txt"]
    assert s3.get_object(Bucket=bucket, Key="data/a.txt")["Body"].read() == b"changed since"
    outcome = invoke(
        "storage.backup_restore", actor, {"connection": conn.name, "bucket": vault, "backup_prefix": "backups/c/", "overwrite": True}
    )
    assert outcome.status == "pending"


def test_a_backup_interrupted_by_the_endpoint_resumes_where_it_stopped(make_user, actor_of, conn, proxy, s3, bucket, vault, celery_worker):
    for i in range(150):
        s3.put_object(Bucket=bucket, Key=f"many/{i:03d}.txt", Body=f"object {i}".encode())
    through_proxy = make_connection(proxy.url)
    actor = actor_of(make_user("operator"))
    params = {"connection": conn.name, "bucket": bucket, "prefix": "many/", "dest_connection": through_proxy.name,
              "dest_bucket": vault, "backup_id": "resumable"}  # fmt: skip
    outcome = invoke("storage.backup_create", actor, params)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "Contents" not in s3.list_objects_v2(Bucket=vault, Prefix="backups/resumable/manifest-parts/"):
        time.sleep(0.02)
    proxy.stop()  # the backup's destination goes away after the first checkpoint
    job = wait_for_job(outcome.job.pk)
    assert job.status == "failed" and "did not answer" in job.error
    proxy.start()
    job = run(actor, "storage.backup_create", params)
    assert 25 <= job.result["resumed_after"] < 150
    assert job.result["copied"] == 150 - job.result["resumed_after"] and job.result["objects"] == 150
    assert job.log_lines.filter(text__startswith="resuming backup resumable").exists()
    header, entries = manifest(s3, vault, "backups/resumable/")
    assert header["objects"] == 150 and sorted(e["key"] for e in entries) == [f"many/{i:03d}.txt" for i in range(150)]
    assert "Contents" not in s3.list_objects_v2(Bucket=vault, Prefix="backups/resumable/manifest-parts/")
    listed = invoke("storage.backups", actor, {"connection": conn.name, "bucket": vault}).result.backups
    assert [(b.backup_prefix, b.complete, b.objects) for b in listed] == [("backups/resumable/", True, 150)]


def test_a_restore_interrupted_by_the_endpoint_leaves_whole_objects_and_resumes(
    make_user, actor_of, conn, proxy, s3, bucket, vault, celery_worker
):
    bodies = {f"many/{i:03d}.txt": f"object {i}\n".encode() * (i + 1) for i in range(200)}
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    actor = actor_of(make_user("operator"))
    run(actor, "storage.backup_create", {"connection": conn.name, "bucket": bucket, "prefix": "many/", "dest_bucket": vault,
                                          "backup_id": "r"})  # fmt: skip
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in bodies]})
    through_proxy = make_connection(proxy.url)
    params = {"connection": conn.name, "bucket": vault, "backup_prefix": "backups/r/", "target_connection": through_proxy.name}
    outcome = invoke("storage.backup_restore", actor, params)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and s3.list_objects_v2(Bucket=bucket, Prefix="many/")["KeyCount"] < 20:
        time.sleep(0.02)
    proxy.stop()  # the restore's target goes away part-way
    job = wait_for_job(outcome.job.pk)
    assert job.status == "failed" and "did not answer" in job.error
    present = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="many/").get("Contents", [])]
    assert 20 <= len(present) < 200
    for key in present:  # what is there is whole: no partial or corrupt object
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == bodies[key], key
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    proxy.start()
    job = run(actor, "storage.backup_restore", params)
    assert job.result["already_in_place"] == len(present) and job.result["restored"] == 200 - len(present)
    assert job.result["mismatches"] == job.result["conflicts"] == job.result["missing"] == []
    for key, body in bodies.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body, key
