"""storage.replicate and storage.analyze as jobs on a real Celery worker."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.gateway import invoke

from .conftest import blocks, make_connection, wait_for_job

pytestmark = [pytest.mark.peer, pytest.mark.django_db(transaction=True)]
MIB = 1024 * 1024
GIB = 1024**3


def run(actor, name, params):
    outcome = invoke(name, actor, params)
    job = wait_for_job(outcome.job.pk)
    assert job.status == "succeeded", job.error
    return job.result


def test_replicate_copies_only_what_changed(make_user, actor_of, conn, moto_server, s3, bucket, celery_worker):
    other = make_connection(moto_server)  # another connection (here: the same server)
    target = f"replica-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=target)
    # Versioned: a confidential replica is replaced by a newer copy, the old one kept (else the copy is refused).
    s3.put_bucket_versioning(Bucket=target, VersioningConfiguration={"Status": "Enabled"})
    big = b"".join(blocks(9 * MIB, b"r"))  # multipart on the way: its ETag differs at the destination
    files = {"src/a.txt": b"a", "src/sub/b.txt": b"bb", "src/big.bin": big, "other/skip.txt": b"not in the prefix"}
    for key, body in files.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, Tagging="classification=confidential")
    actor = actor_of(make_user("operator"))
    params = {"connection": conn.name, "bucket": bucket, "prefix": "src/", "dest_connection": other.name, "dest_bucket": target,
              "dest_prefix": "mirror/"}  # fmt: skip

    dry = run(actor, "storage.replicate", {**params, "dry_run": True})
    assert dry["copied"] == 3 and dry["dry_run"] and "Contents" not in s3.list_objects_v2(Bucket=target)

    first = run(actor, "storage.replicate", params)
    assert (first["examined"], first["copied"], first["unchanged"]) == (3, 3, 0)
    assert first["bytes_copied"] == 1 + 2 + len(big)
    assert s3.get_object(Bucket=target, Key="mirror/big.bin")["Body"].read() == big
    assert s3.get_object(Bucket=target, Key="mirror/sub/b.txt")["Body"].read() == b"bb"
    assert s3.get_object_tagging(Bucket=target, Key="mirror/a.txt")["TagSet"] == [{"Key": "classification", "Value": "confidential"}]

    second = run(actor, "storage.replicate", params)
    assert (second["copied"], second["unchanged"]) == (0, 3)

    s3.put_object(Bucket=bucket, Key="src/sub/b.txt", Body=b"BB", Tagging="classification=confidential")  # same size, other bytes
    third = run(actor, "storage.replicate", params)
    assert third["copied"] == 1 and third["keys"] == ["src/sub/b.txt"]
    assert s3.get_object(Bucket=target, Key="mirror/sub/b.txt")["Body"].read() == b"BB"


def test_analyze_counts_bytes_classes_ages_and_cost(make_user, actor_of, conn, s3, bucket, celery_worker):
    s3.put_object(Bucket=bucket, Key="logs/2024/a.log", Body=b"x" * 1000)
    s3.put_object(Bucket=bucket, Key="logs/2025/b.log", Body=b"x" * 3000)
    s3.put_object(Bucket=bucket, Key="archive/old.tar", Body=b"x" * 5000, StorageClass="GLACIER")
    s3.put_object(Bucket=bucket, Key="readme.txt", Body=b"x" * 10)
    actor = actor_of(make_user("viewer"))
    now = timezone.now() + timedelta(days=40)  # as if analysed 40 days from now
    params = {"connection": conn.name, "bucket": bucket, "top": 2, "now": now.isoformat(), "prices": {"STANDARD": 2.0, "GLACIER": 0.5}}
    result = run(actor, "storage.analyze", params)
    assert (result["objects"], result["bytes"]) == (4, 9010)
    assert [(t["name"], t["objects"], t["bytes"]) for t in result["by_prefix"]] == [
        ("archive/", 1, 5000), ("logs/", 2, 4000), ("(top level)", 1, 10)
    ]  # fmt: skip
    classes = {t["name"]: t for t in result["by_storage_class"]}
    assert classes["GLACIER"]["bytes"] == 5000 and classes["STANDARD"]["bytes"] == 4010
    assert classes["STANDARD"]["monthly_cost"] == round(4010 / GIB * 2.0, 4)
    assert result["monthly_cost"] == round(round(4010 / GIB * 2.0, 4) + round(5000 / GIB * 0.5, 4), 4)
    ages = {t["name"]: t["objects"] for t in result["age_histogram"]}
    assert ages == {"< 7 days": 0, "7–30 days": 0, "30–90 days": 4, "90–365 days": 0, "> 1 year": 0}
    assert [o["key"] for o in result["largest"]] == ["archive/old.tar", "logs/2025/b.log"]
    deeper = run(actor, "storage.analyze", {**params, "prefix": "logs/", "depth": 1})
    assert [t["name"] for t in deeper["by_prefix"]] == ["logs/2025/", "logs/2024/"]
