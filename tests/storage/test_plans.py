"""Storage plans on a real S3 server: a prefix delete's plan names the objects it removes
(bounded), their count and bytes, and an object added after approval makes it drift; a
lifecycle change shows the rules before → after and drifts if the rules changed meanwhile;
a restore names the backup it reads and where it writes."""

import uuid

import pytest

from apps.approvals import services as approvals
from apps.core.gateway import invoke, run_job
from apps.core.models import Job
from apps.storage.services import deletes

pytestmark = pytest.mark.peer


def keys(s3, bucket):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


@pytest.mark.django_db
def test_the_plan_names_the_objects_their_count_and_bytes_with_a_cap(make_user, actor_of, conn, s3, bucket, monkeypatch):
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"logs/{i}.txt", Body=b"x" * (10 + i))
    monkeypatch.setattr(deletes, "PLAN_LISTED", 3)
    outcome = invoke("storage.delete", actor_of(make_user("operator")), {"connection": conn.name, "bucket": bucket, "prefix": "logs/"})
    plan = outcome.approval.plan
    assert (plan["count"], plan["bytes"], plan["complete"]) == (5, 60, True)
    assert [e["key"] for e in plan["listed"]] == ["logs/0.txt", "logs/1.txt", "logs/2.txt"]
    assert plan["listing_cap"] == f"the first 3 are named; up to {deletes.PLAN_COUNTED} are counted"
    assert plan["links"]["objects"] == f"/storage/c/{conn.name}/b/{bucket}/?prefix=logs%2F"


@pytest.mark.django_db
def test_an_object_added_after_approval_ends_the_delete_drifted(make_user, actor_of, conn, s3, bucket):
    s3.put_object(Bucket=bucket, Key="tmp/old.txt", Body=b"old")
    outcome = invoke("storage.delete", actor_of(make_user("operator")), {"connection": conn.name, "bucket": bucket, "prefix": "tmp/"})
    approvals.vote(outcome.approval.pk, actor_of(make_user("approver")), "approve")
    s3.put_object(Bucket=bucket, Key="tmp/new-and-precious.txt", Body=b"new")
    job = Job.objects.get(approval_id=outcome.approval.pk)
    run_job(str(job.pk))

    outcome.approval.refresh_from_db()
    assert outcome.approval.status == "drifted" and Job.objects.get(pk=job.pk).status == "failed"
    assert keys(s3, bucket) == ["tmp/new-and-precious.txt", "tmp/old.txt"]  # nothing deleted


EXPIRE = {"id": "expire-tmp", "prefix": "tmp/", "expiration_days": 7}


@pytest.mark.django_db
def test_a_lifecycle_change_shows_before_and_after_and_drifts_if_the_rules_changed(make_user, actor_of, conn, s3, bucket, client):
    keep = {
        "ID": "keep-logs",
        "Filter": {"Prefix": "logs/"},
        "Status": "Enabled",
        "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}],
    }
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [keep]})
    operator = actor_of(make_user("operator"))
    outcome = invoke("storage.lifecycle_put", operator, {"connection": conn.name, "bucket": bucket, "rules": [EXPIRE]})
    plan = outcome.approval.plan
    assert list(plan["before"]) == ["keep-logs"] and list(plan["after"]) == ["expire-tmp"] and plan["expiring_rules"] == ["expire-tmp"]
    client.force_login(make_user("approver"))
    page = client.get(f"/approvals/{outcome.approval.pk}/").content.decode()
    assert "<td>keep-logs.prefix: &quot;logs/&quot;</td>" in page and "<td>expire-tmp.expiration_days: 7</td>" in page

    s3.delete_bucket_lifecycle(Bucket=bucket)  # someone changes the rules while the request waits
    approvals.vote(outcome.approval.pk, actor_of(make_user("approver")), "approve")
    run_job(str(Job.objects.get(approval_id=outcome.approval.pk).pk))
    outcome.approval.refresh_from_db()
    assert outcome.approval.status == "drifted"
    assert not _has_rules(s3, bucket)  # the approved rule set was not applied over the changed one


def _has_rules(s3, bucket) -> bool:
    try:
        return bool(s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules"))
    except s3.exceptions.ClientError:
        return False


@pytest.mark.django_db
def test_a_restore_plan_names_the_backup_and_where_it_writes(make_user, actor_of, conn, s3, bucket):
    vault = f"vault-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=vault)
    s3.put_object(Bucket=bucket, Key="data/a.txt", Body=b"alpha")
    operator = actor_of(make_user("operator"))
    backup = {"connection": conn.name, "bucket": bucket, "prefix": "data/", "dest_bucket": vault, "backup_id": "p"}
    created = invoke("storage.backup_create", operator, backup)
    run_job(str(created.job.pk))
    assert Job.objects.get(pk=created.job.pk).status == "succeeded"
    outcome = invoke(
        "storage.backup_restore", operator, {"connection": conn.name, "bucket": vault, "backup_prefix": "backups/p/", "overwrite": True}
    )
    plan = outcome.approval.plan
    assert (plan["backup"]["id"], plan["backup"]["objects"], plan["backup"]["bytes"]) == ("p", 1, 5) and plan["backup"]["manifest_etag"]
    assert plan["into"] == {"connection": conn.name, "bucket": bucket, "prefix": "data/", "keeps_versions": False}
    assert plan["overwrite"] is True and plan["objects"] == {"create": 0, "overwrite": 0, "already_in_place": 1}
