"""A prefix delete's plan names the objects it removes (bounded), their count and bytes;
an object added under the prefix after approval is not deleted by it: the request drifts."""

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
    job = Job.objects.get(approval=outcome.approval)
    run_job(str(job.pk))

    outcome.approval.refresh_from_db()
    assert outcome.approval.status == "drifted" and Job.objects.get(pk=job.pk).status == "failed"
    assert keys(s3, bucket) == ["tmp/new-and-precious.txt", "tmp/old.txt"]  # nothing deleted
