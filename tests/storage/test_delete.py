"""storage.delete on a real S3 server: versioning-aware, and risky only where it
should be — confidential and restricted objects and whole prefixes wait for an
approver; the approved delete runs on a real Celery worker."""

import pytest

from apps.approvals import services as approvals
from apps.audit.models import AuditEvent
from apps.core.gateway import invoke

from .conftest import wait_for_job

pytestmark = pytest.mark.peer


def keys(s3, bucket):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


@pytest.mark.django_db
def test_an_internal_object_is_deleted_at_once(make_user, actor_of, conn, s3, bucket):
    s3.put_object(Bucket=bucket, Key="plain.txt", Body=b"x", Tagging="classification=internal")
    outcome = invoke("storage.delete", actor_of(make_user("operator")), {"connection": conn.name, "bucket": bucket, "key": "plain.txt"})
    assert outcome.status == "ok" and outcome.result.count == 1 and not outcome.result.deleted[0].delete_marker
    assert keys(s3, bucket) == []


@pytest.mark.django_db
def test_on_a_versioned_bucket_a_delete_adds_a_marker_and_all_versions_removes_everything(make_user, actor_of, conn, s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=bucket, Key="doc.txt", Body=b"v1")["VersionId"]
    s3.put_object(Bucket=bucket, Key="doc.txt", Body=b"v2")
    actor = actor_of(make_user("operator"))
    ref = {"connection": conn.name, "bucket": bucket, "key": "doc.txt"}
    result = invoke("storage.delete", actor, ref).result
    assert result.versioning == "Enabled" and result.deleted[0].delete_marker
    assert keys(s3, bucket) == []
    # The data is still there as older versions: the old one can still be read.
    assert s3.get_object(Bucket=bucket, Key="doc.txt", VersionId=first)["Body"].read() == b"v1"
    result = invoke("storage.delete", actor, {**ref, "all_versions": True}).result
    assert result.count == 3  # two versions and the marker
    assert "Versions" not in s3.list_object_versions(Bucket=bucket) and "DeleteMarkers" not in s3.list_object_versions(Bucket=bucket)


@pytest.mark.django_db(transaction=True)
def test_a_restricted_delete_waits_for_approval_then_runs_on_the_worker(make_user, actor_of, conn, s3, bucket, celery_worker):
    s3.put_object(Bucket=bucket, Key="hr/salaries.csv", Body=b"...", Tagging="classification=restricted")
    operator = actor_of(make_user("operator"))
    outcome = invoke(
        "storage.delete", operator, {"connection": conn.name, "bucket": bucket, "key": "hr/salaries.csv"}, reason="GDPR request"
    )
    assert outcome.status == "pending"
    assert keys(s3, bucket) == ["hr/salaries.csv"]  # nothing happened yet
    pending = AuditEvent.objects.filter(operation="storage.delete").latest("seq")
    assert pending.outcome == "pending" and pending.params["key"] == "hr/salaries.csv"
    assert pending.target == f"{conn.name}:{bucket}/hr/salaries.csv"
    approvals.vote(outcome.approval.pk, actor_of(make_user("approver")), "approve")
    job = wait_for_job(outcome.approval.jobs.get().pk)
    assert job.status == "succeeded", job.error
    assert keys(s3, bucket) == []


@pytest.mark.django_db
def test_confidential_objects_and_prefixes_need_approval_public_ones_do_not(make_user, actor_of, conn, s3, bucket):
    s3.put_object(Bucket=bucket, Key="c.txt", Body=b"x", Tagging="classification=confidential")
    s3.put_object(Bucket=bucket, Key="p.txt", Body=b"x", Tagging="classification=public")
    s3.put_object(Bucket=bucket, Key="logs/a.log", Body=b"x")
    actor = actor_of(make_user("operator"))
    ref = {"connection": conn.name, "bucket": bucket}
    assert invoke("storage.delete", actor, {**ref, "key": "c.txt"}).status == "pending"
    assert invoke("storage.delete", actor, {**ref, "prefix": "logs/"}).status == "pending"
    assert invoke("storage.delete", actor, {**ref, "key": "p.txt"}).status == "ok"
    assert keys(s3, bucket) == ["c.txt", "logs/a.log"]


@pytest.mark.django_db
def test_the_delete_form_sends_a_prefix_to_the_approvers(client, make_user, conn, s3, bucket):
    s3.put_object(Bucket=bucket, Key="old/1.txt", Body=b"x")
    client.force_login(make_user("operator"))
    response = client.post(f"/storage/c/{conn.name}/b/{bucket}/delete/", {"prefix": "old/", "reason": "cleanup"})
    assert response.status_code == 302 and "/approvals/" in response["Location"]
    assert keys(s3, bucket) == ["old/1.txt"]
    response = client.post(f"/storage/c/{conn.name}/b/{bucket}/delete/", {"key": "missing.txt"}, follow=True)
    assert "There is no object" in response.content.decode()
