"""A write may not do what only an approved delete may: on a real S3 server, writing over a
confidential object in a bucket without versioning is refused before any byte is written
(through the gateway as an agent, and through the web upload stream as a person), so is any
write that lowers a classification (upload, replication); storage.reclassify lowers one only
after someone else approves, and drifts if the object changed meanwhile; raising is immediate;
a versioned bucket keeps the old version, so a write that does not lower is allowed there."""

import hashlib

import pytest

from apps.approvals import services as approvals
from apps.audit.models import AuditEvent
from apps.core.errors import PermissionDenied
from apps.core.gateway import invoke, run_job
from apps.core.models import Job
from apps.storage.services.classification import ClassificationGuard

from .conftest import ConsoleSession

pytestmark = pytest.mark.peer


def state(s3, bucket, key) -> tuple[bytes, str, int]:
    """The object's bytes, classification tag and number of versions: what a refused write must leave alone."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}
    versions = len(s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", []))
    return body, tags.get("classification", ""), versions


def upload(actor, conn, bucket, key, content, classification):
    params = {"connection": conn.name, "bucket": bucket, "key": key, "content": content, "classification": classification}
    return invoke("storage.upload", actor, params, "mcp")


@pytest.mark.django_db
def test_writing_over_a_confidential_object_without_versioning_is_refused(make_user, actor_of, conn, s3, bucket):
    s3.put_object(Bucket=bucket, Key="hr/salaries.csv", Body=b"precious", Tagging="classification=confidential")
    operator = actor_of(make_user("operator"))
    for classification in ("confidential", "restricted", "public"):
        with pytest.raises(ClassificationGuard) as refused:
            upload(operator, conn, bucket, "hr/salaries.csv", "overwritten", classification)
        assert f"{conn.name}:{bucket}/hr/salaries.csv is classified confidential" in refused.value.message
    assert "keeps no versions" in _message(operator, conn, bucket, "restricted")
    assert "storage.delete first" in _message(operator, conn, bucket, "restricted")
    assert "storage.reclassify" in _message(operator, conn, bucket, "public")
    assert state(s3, bucket, "hr/salaries.csv") == (b"precious", "confidential", 1)
    event = AuditEvent.objects.filter(operation="storage.upload").latest("seq")
    assert event.outcome == "denied" and "classified confidential" in event.error
    # Under another key, the same upload is fine.
    assert upload(operator, conn, bucket, "hr/salaries-2.csv", "new", "confidential").status == "ok"


def _message(actor, conn, bucket, classification) -> str:
    with pytest.raises(ClassificationGuard) as refused:
        upload(actor, conn, bucket, "hr/salaries.csv", "overwritten", classification)
    return refused.value.message


@pytest.mark.django_db
def test_an_upload_may_raise_a_classification_never_lower_it(make_user, actor_of, conn, s3, bucket):
    s3.put_object(Bucket=bucket, Key="report.txt", Body=b"v1", Tagging="classification=internal")
    operator = actor_of(make_user("operator"))
    with pytest.raises(ClassificationGuard, match="would lower its classification"):
        upload(operator, conn, bucket, "report.txt", "v2", "public")
    assert state(s3, bucket, "report.txt") == (b"v1", "internal", 1)
    assert upload(operator, conn, bucket, "report.txt", "v2", "internal").status == "ok"  # not protected, not lower
    assert upload(operator, conn, bucket, "report.txt", "v3", "confidential").status == "ok"  # raising: at once
    assert state(s3, bucket, "report.txt") == (b"v3", "confidential", 1)


@pytest.mark.django_db
def test_a_versioned_bucket_keeps_the_old_version_so_an_overwrite_that_does_not_lower_is_allowed(make_user, actor_of, conn, s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old = s3.put_object(Bucket=bucket, Key="c.txt", Body=b"v1", Tagging="classification=confidential")["VersionId"]
    operator = actor_of(make_user("operator"))
    with pytest.raises(ClassificationGuard, match="would lower its classification"):
        upload(operator, conn, bucket, "c.txt", "v2", "internal")
    assert state(s3, bucket, "c.txt") == (b"v1", "confidential", 1)
    assert upload(operator, conn, bucket, "c.txt", "v2", "confidential").status == "ok"
    assert state(s3, bucket, "c.txt") == (b"v2", "confidential", 2)
    assert s3.get_object(Bucket=bucket, Key="c.txt", VersionId=old)["Body"].read() == b"v1"
    # Behind a delete marker nothing is current: a new object may take the key; the old versions keep their tags.
    s3.delete_object(Bucket=bucket, Key="c.txt")
    assert upload(operator, conn, bucket, "c.txt", "v3", "public").status == "ok"
    old_tags = s3.get_object_tagging(Bucket=bucket, Key="c.txt", VersionId=old)["TagSet"]
    assert old_tags == [{"Key": "classification", "Value": "confidential"}]


@pytest.mark.django_db(transaction=True)
def test_the_web_upload_stream_refuses_an_overwrite_before_writing(storage_console, client, make_user, conn, s3, bucket):
    s3.put_object(Bucket=bucket, Key="secret.bin", Body=b"precious", Tagging="classification=restricted")
    _, base = storage_console
    session = ConsoleSession(base, client, make_user("operator"))
    data = b"overwrite"
    fields = {"size": str(len(data)), "sha256": hashlib.sha256(data).hexdigest(), "classification": "restricted"}
    ticket = session.ticket(conn.name, bucket, key="secret.bin", **fields)  # said before the file is sent
    assert ticket.status_code == 409 and "is classified restricted" in ticket.json()["error"]
    # The object appears after the ticket was issued: storage.upload itself refuses before writing.
    url = session.ticket(conn.name, bucket, key="late.bin", **fields).json()["url"]
    s3.put_object(Bucket=bucket, Key="late.bin", Body=b"arrived", Tagging="classification=restricted")
    answer = session.http.put(url, content=data)
    assert answer.status_code == 409 and "is classified restricted" in answer.json()["error"]
    assert state(s3, bucket, "secret.bin") == (b"precious", "restricted", 1)
    assert state(s3, bucket, "late.bin") == (b"arrived", "restricted", 1)
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)


@pytest.mark.django_db
def test_replication_leaves_protected_destination_objects_alone_and_says_so(make_user, actor_of, conn, s3, bucket):
    s3.put_object(Bucket=bucket, Key="src/a.txt", Body=b"public copy", Tagging="classification=public")
    s3.put_object(Bucket=bucket, Key="src/b.txt", Body=b"fine", Tagging="classification=internal")
    s3.put_object(Bucket=bucket, Key="dst/a.txt", Body=b"precious", Tagging="classification=confidential")
    params = {"connection": conn.name, "bucket": bucket, "prefix": "src/", "dest_bucket": bucket, "dest_prefix": "dst/"}
    outcome = invoke("storage.replicate", actor_of(make_user("operator")), params)
    run_job(str(outcome.job.pk))
    job = Job.objects.get(pk=outcome.job.pk)
    assert job.status == "succeeded", job.error
    assert (job.result["refused"], job.result["keys"]) == (["src/a.txt"], ["src/b.txt"])
    assert state(s3, bucket, "dst/a.txt") == (b"precious", "confidential", 1)
    assert state(s3, bucket, "dst/b.txt") == (b"fine", "internal", 1)


@pytest.mark.django_db
def test_lowering_a_classification_waits_for_someone_else_raising_is_immediate(make_user, actor_of, conn, s3, bucket, client):
    s3.put_object(Bucket=bucket, Key="plan.pdf", Body=b"x", Tagging="classification=confidential&owner=finance")
    requester = make_user("admin", "approver")
    ref = {"connection": conn.name, "bucket": bucket, "key": "plan.pdf"}
    outcome = invoke("storage.reclassify", actor_of(requester), {**ref, "classification": "public"}, "mcp", reason="published")
    assert outcome.status == "pending"
    plan = outcome.approval.plan
    assert (plan["before"], plan["after"]) == ({"classification": "confidential"}, {"classification": "public"})
    assert state(s3, bucket, "plan.pdf")[1] == "confidential"  # nothing happened yet
    # Deleting it still needs approval while the request waits.
    assert invoke("storage.delete", actor_of(requester), ref).status == "pending"
    with pytest.raises(PermissionDenied, match="your own request"):
        approvals.vote(outcome.approval.pk, actor_of(requester), "approve")
    client.force_login(make_user("approver"))
    page = client.get(f"/approvals/{outcome.approval.pk}/").content.decode()
    assert "<td>classification: &quot;confidential&quot;</td>" in page and "<td>classification: &quot;public&quot;</td>" in page
    approvals.vote(outcome.approval.pk, actor_of(make_user("approver")), "approve")
    job = Job.objects.get(approval_id=outcome.approval.pk)
    run_job(str(job.pk))
    assert Job.objects.get(pk=job.pk).status == "succeeded"
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key="plan.pdf")["TagSet"]}
    assert tags == {"classification": "public", "owner": "finance"}  # the other tags stay

    raised = invoke("storage.reclassify", actor_of(make_user("operator")), {**ref, "classification": "restricted"})
    assert raised.status == "ok" and (raised.result.before, raised.result.after) == ("public", "restricted")
    assert state(s3, bucket, "plan.pdf")[1] == "restricted"


@pytest.mark.django_db
def test_a_reclassification_of_an_object_replaced_after_approval_drifts(make_user, actor_of, conn, s3, bucket):
    s3.put_object(Bucket=bucket, Key="memo.txt", Body=b"approved bytes", Tagging="classification=restricted")
    outcome = invoke("storage.reclassify", actor_of(make_user("operator")),
                     {"connection": conn.name, "bucket": bucket, "key": "memo.txt", "classification": "internal"})  # fmt: skip
    approvals.vote(outcome.approval.pk, actor_of(make_user("approver")), "approve")
    s3.put_object(Bucket=bucket, Key="memo.txt", Body=b"other bytes", Tagging="classification=restricted")
    run_job(str(Job.objects.get(approval_id=outcome.approval.pk).pk))
    outcome.approval.refresh_from_db()
    assert outcome.approval.status == "drifted"
    assert state(s3, bucket, "memo.txt") == (b"other bytes", "restricted", 1)
