"""A backup writes only what it may, and a restore's plan says what it overwrites (real S3 server):
storage.backup_create (a plain write) refuses a folder that holds anything it did not write — a
confidential object where a data object, a checkpoint or the manifest would go stays as it was and
nothing else is written; storage.backup_restore with overwrite names the protected objects it would
replace (classification now → restored) and digests every object it overwrites, so one that changes
after the vote — bytes or only its classification — ends the approved request drifted. Overwriting a
protected object is a guard call: someone else approves it whatever the policy rows say (web form, gateway
and MCP alike), and a run that no one else approved leaves what is protected when it gets there alone.
The agent path (MCP) gets the same answers."""

import hashlib

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from apps.approvals import services as approvals
from apps.approvals.models import ApprovalPolicy, ApprovalRequest
from apps.audit.models import AuditEvent
from apps.core.errors import PermissionDenied
from apps.core.gateway import invoke, run_job
from apps.core.models import Job
from apps.storage.client import connect
from apps.storage.services import backups
from apps.storage.services.classification import ClassificationGuard
from apps.storage.services.common import Classification
from tests.mcp.conftest import mcp_client

from .test_classification import state

pytestmark = pytest.mark.peer


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def backup_params(conn, bucket, backup_id="b1"):
    return {
        "connection": conn.name,
        "bucket": bucket,
        "prefix": "src/",
        "dest_bucket": bucket,
        "dest_prefix": "vault/",
        "backup_id": backup_id,
    }


def folder(s3, bucket, root) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=root).get("Contents", [])]


# Where a backup `vault/b1/` of src/ would write: a data object (named after the source key), a checkpoint
# part (read as the checkpoint, then deleted), and any other object in the folder.
COLLIDING = [f"vault/b1/data/{sha('src/a.txt')}", "vault/b1/manifest-parts/000001.jsonl", "vault/b1/notes.txt"]


@pytest.mark.django_db
@pytest.mark.parametrize("victim", COLLIDING, ids=["data", "checkpoint", "other"])
def test_a_backup_into_a_folder_holding_an_object_it_did_not_write_refuses_and_leaves_it(make_user, actor_of, conn, s3, bucket, victim):
    s3.put_object(Bucket=bucket, Key="src/a.txt", Body=b"public words", Tagging="classification=public")
    s3.put_object(Bucket=bucket, Key=victim, Body=b'{"precious": true}\n', Tagging="classification=confidential")
    outcome = invoke("storage.backup_create", actor_of(make_user("operator")), backup_params(conn, bucket), "mcp")
    run_job(str(outcome.job.pk))
    job = Job.objects.get(pk=outcome.job.pk)
    assert job.status == "failed"
    assert f"{conn.name}:{bucket}/{victim} is in the backup folder vault/b1/ but this backup did not write it" in job.error
    assert state(s3, bucket, victim) == (b'{"precious": true}\n', "confidential", 1)
    assert folder(s3, bucket, "vault/") == [victim]  # nothing else written
    event = AuditEvent.objects.filter(operation="storage.backup_create").latest("seq")
    assert event.outcome == "denied" and victim in event.error


@pytest.mark.django_db
def test_a_backup_resumes_over_its_own_objects_but_not_over_a_copy_of_them(make_user, actor_of, conn, s3, bucket):
    s3.put_object(Bucket=bucket, Key="src/a.txt", Body=b"secret", Tagging="classification=confidential")
    operator = actor_of(make_user("operator"))
    run_job(str(invoke("storage.backup_create", operator, backup_params(conn, bucket)).job.pk))
    data = f"vault/b1/data/{sha('src/a.txt')}"
    # The same folder again: complete, nothing written. Its data object copied (metadata and all) into a new folder:
    # not this backup's, so refused; the mark is bound to where an object is.
    again = invoke("storage.backup_create", operator, backup_params(conn, bucket))
    run_job(str(again.job.pk))
    assert Job.objects.get(pk=again.job.pk).result["copied"] == 0
    copy = f"vault/b2/data/{sha('src/a.txt')}"
    s3.copy_object(Bucket=bucket, Key=copy, CopySource={"Bucket": bucket, "Key": data}, TaggingDirective="COPY")
    outcome = invoke("storage.backup_create", operator, backup_params(conn, bucket, "b2"))
    run_job(str(outcome.job.pk))
    job = Job.objects.get(pk=outcome.job.pk)
    assert job.status == "failed" and f"{bucket}/{copy} is in the backup folder vault/b2/" in job.error
    assert folder(s3, bucket, "vault/b2/") == [copy]


@pytest.mark.django_db
def test_each_backup_write_asks_check_write_and_replaces_only_its_own_objects(conn, s3, bucket):
    """What guards an object that appears in the folder after the backup listed it: the check before each write
    (called directly: the race itself cannot be staged on a real server without a clock in the copy loop)."""
    dst = connect(conn.name)
    s3.put_object(Bucket=bucket, Key="vault/b1/data/late", Body=b"precious", Tagging="classification=restricted")
    with pytest.raises(ClassificationGuard, match="vault/b1/data/late is classified restricted"):
        backups._write_args(dst, bucket, "vault/b1/data/late", Classification.RESTRICTED)
    own = backups._write_args(dst, bucket, "vault/b1/data/own", Classification.RESTRICTED)
    s3.put_object(Bucket=bucket, Key="vault/b1/data/own", Body=b"copied", Metadata=own["Metadata"], Tagging=own["Tagging"])
    assert backups._write_args(dst, bucket, "vault/b1/data/own", None)["Metadata"] == own["Metadata"]  # its own: replaceable
    assert state(s3, bucket, "vault/b1/data/late") == (b"precious", "restricted", 1)


def _backup_then_change(make_user, actor_of, conn, s3, bucket):
    """A backup of five objects, then: a changed (confidential), b reclassified up (restricted, backup says
    internal) and changed, c changed (public), d deleted, e untouched."""
    originals = {"a": "confidential", "b": "internal", "c": "public", "d": "public", "e": "internal"}
    for name, classification in originals.items():
        s3.put_object(Bucket=bucket, Key=f"src/{name}.txt", Body=f"{name} v1".encode(), Tagging=f"classification={classification}")
    operator = actor_of(make_user("operator"))
    run_job(str(invoke("storage.backup_create", operator, backup_params(conn, bucket)).job.pk))
    s3.put_object(Bucket=bucket, Key="src/a.txt", Body=b"a v2", Tagging="classification=confidential")
    s3.put_object(Bucket=bucket, Key="src/b.txt", Body=b"b v2", Tagging="classification=restricted")
    s3.put_object(Bucket=bucket, Key="src/c.txt", Body=b"c v2", Tagging="classification=public")
    s3.delete_object(Bucket=bucket, Key="src/d.txt")
    return operator


def restore_params(conn, bucket, overwrite):
    return {"connection": conn.name, "bucket": bucket, "backup_prefix": "vault/b1/", "overwrite": overwrite}


@pytest.mark.django_db
def test_a_restore_plan_names_the_protected_objects_it_overwrites_and_the_approved_run_restores(
    make_user, actor_of, conn, s3, bucket, client
):
    operator = _backup_then_change(make_user, actor_of, conn, s3, bucket)
    # Without overwrite: nothing is written over, protected or not; only the deleted object comes back.
    kept = invoke("storage.backup_restore", operator, restore_params(conn, bucket, False))
    run_job(str(kept.job.pk))
    result = Job.objects.get(pk=kept.job.pk).result
    assert (result["restored"], sorted(result["conflicts"]), result["already_in_place"]) == (1, ["src/a.txt", "src/b.txt", "src/c.txt"], 1)
    assert state(s3, bucket, "src/b.txt") == (b"b v2", "restricted", 1)

    s3.delete_object(Bucket=bucket, Key="src/d.txt")
    outcome = invoke("storage.backup_restore", operator, restore_params(conn, bucket, True))
    assert outcome.status == "pending"
    plan = outcome.approval.plan
    assert plan["objects"] == {"create": 1, "overwrite": 3, "already_in_place": 1}
    assert plan["overwritten_protected"]["count"] == 2
    assert plan["overwritten_protected"]["listed"] == [
        {"key": "src/a.txt", "classification": "confidential → confidential"},
        {"key": "src/b.txt", "classification": "restricted → internal"},
    ]
    assert plan["into"]["keeps_versions"] is False and len(plan["overwrite_digest"]) == 64
    assert "creates 1, overwrites 3 holding other content (2 of them protected), 1 already in place" in plan["summary"]

    approver = make_user("approver")
    client.force_login(approver)
    page = client.get(f"/approvals/{outcome.approval.pk}/").content.decode()
    assert "src/b.txt" in page and "restricted → internal" in page  # what the approver reads before voting
    approvals.vote(outcome.approval.pk, actor_of(approver), "approve")
    job = Job.objects.get(approval_id=outcome.approval.pk)
    run_job(str(job.pk))
    assert Job.objects.get(pk=job.pk).status == "succeeded"
    assert state(s3, bucket, "src/a.txt") == (b"a v1", "confidential", 1)
    assert state(s3, bucket, "src/b.txt") == (b"b v1", "internal", 1)  # approved: the plan said so


@pytest.mark.django_db
@pytest.mark.parametrize("change", ["bytes", "classification"])
def test_an_overwritten_object_changed_after_approval_ends_the_restore_drifted(make_user, actor_of, conn, s3, bucket, change):
    operator = _backup_then_change(make_user, actor_of, conn, s3, bucket)
    outcome = invoke("storage.backup_restore", operator, restore_params(conn, bucket, True))
    approvals.vote(outcome.approval.pk, actor_of(make_user("approver")), "approve")
    if change == "bytes":
        s3.put_object(Bucket=bucket, Key="src/c.txt", Body=b"c v3 written after the vote", Tagging="classification=public")
    else:  # only the tag: the ETag stays, the plan does not
        s3.put_object_tagging(Bucket=bucket, Key="src/c.txt", Tagging={"TagSet": [{"Key": "classification", "Value": "restricted"}]})
    before = {k: state(s3, bucket, f"src/{k}.txt") for k in "abc"}
    job = Job.objects.get(approval_id=outcome.approval.pk)
    run_job(str(job.pk))
    outcome.approval.refresh_from_db()
    assert outcome.approval.status == "drifted" and Job.objects.get(pk=job.pk).status == "failed"
    assert {k: state(s3, bucket, f"src/{k}.txt") for k in "abc"} == before  # nothing restored
    drifted = AuditEvent.objects.get(operation="approvals.drifted", approval_id=str(outcome.approval.pk))
    assert any("overwrite_digest" in line for line in drifted.params["changed"])


EXEMPTING = [{"operation": "*", "requires_approval": False}, {"operation": "storage.backup_restore", "requires_approval": False}]


@pytest.mark.django_db
@pytest.mark.parametrize("row", EXEMPTING, ids=["every-operation", "restores"])
def test_an_exempting_policy_does_not_let_a_restore_over_protected_objects_run_without_another_person(
    make_user, actor_of, conn, s3, bucket, client, row
):
    ApprovalPolicy.objects.create(**row)
    _backup_then_change(make_user, actor_of, conn, s3, bucket)
    requester = make_user("admin", "approver")  # an admin who approves: still not their own restore
    client.force_login(requester)
    form = {**restore_params(conn, bucket, True), "overwrite": "on", "approval_reason": "roll back the bad import"}
    client.post("/operations/storage.backup_restore/", form)
    approval = AuditEvent.objects.get(operation="storage.backup_restore")
    restores = Job.objects.filter(operation="storage.backup_restore")
    assert approval.outcome == "pending" and not restores.exists()  # the web form: waits, nothing queued
    pending = ApprovalRequest.objects.get(pk=approval.approval_id)
    with pytest.raises(PermissionDenied, match="own request"):
        approvals.vote(pending.pk, actor_of(requester), "approve")
    with pytest.raises(PermissionDenied, match="lowers a guard"):  # break-glass does not lower a guard either
        invoke("storage.backup_restore", actor_of(requester), restore_params(conn, bucket, True), reason="fire", break_glass=True)
    assert not restores.exists()
    assert state(s3, bucket, "src/b.txt") == (b"b v2", "restricted", 1)

    approvals.vote(pending.pk, actor_of(make_user("approver")), "approve")
    run_job(str(Job.objects.get(approval_id=pending.pk).pk))
    assert state(s3, bucket, "src/b.txt") == (b"b v1", "internal", 1)  # approved by someone else: restored


@pytest.mark.django_db
def test_under_an_exempting_policy_a_restore_over_unprotected_objects_runs_but_leaves_one_protected_meanwhile(
    make_user, actor_of, conn, s3, bucket
):
    ApprovalPolicy.objects.create(operation="storage.backup_restore", requires_approval=False)
    for name in "cf":
        s3.put_object(Bucket=bucket, Key=f"src/{name}.txt", Body=f"{name} v1".encode(), Tagging="classification=public")
    operator = actor_of(make_user("operator"))
    run_job(str(invoke("storage.backup_create", operator, backup_params(conn, bucket)).job.pk))
    for name in "cf":
        s3.put_object(Bucket=bucket, Key=f"src/{name}.txt", Body=f"{name} v2".encode(), Tagging="classification=public")
    outcome = invoke("storage.backup_restore", operator, restore_params(conn, bucket, True), "mcp")
    assert outcome.status == "queued"  # nothing protected: the exempting row applies
    # Between the call and the run, f becomes restricted: the unapproved run may not write over it.
    s3.put_object_tagging(Bucket=bucket, Key="src/f.txt", Tagging={"TagSet": [{"Key": "classification", "Value": "restricted"}]})
    run_job(str(outcome.job.pk))
    job = Job.objects.get(pk=outcome.job.pk)
    assert (job.status, job.result["restored"], job.result["conflicts"]) == ("succeeded", 1, ["src/f.txt"])
    assert state(s3, bucket, "src/c.txt") == (b"c v1", "public", 1)
    assert state(s3, bucket, "src/f.txt") == (b"f v2", "restricted", 1)


@pytest.fixture
def mcp_url(console_server) -> str:
    return console_server + "/mcp"


@pytest.mark.django_db(transaction=True)
async def test_an_agent_gets_the_same_refusal_and_the_same_plan(mcp_url, make_user, make_token, conn, s3, bucket, celery_worker):
    victim = f"vault/b1/data/{sha('src/a.txt')}"
    s3.put_object(Bucket=bucket, Key="src/a.txt", Body=b"a v1", Tagging="classification=public")
    s3.put_object(Bucket=bucket, Key=victim, Body=b"precious", Tagging="classification=confidential")
    await sync_to_async(ApprovalPolicy.objects.create)(operation="*", requires_approval=False)  # exempts nothing here
    _, raw = await sync_to_async(make_token)(await sync_to_async(make_user)("operator"))
    async with mcp_client(mcp_url, raw) as agent:
        refused = await agent.call_tool("storage_backup_create", backup_params(conn, bucket))
        assert refused.is_error and "this backup did not write it" in refused.content[0].text
        assert state(s3, bucket, victim) == (b"precious", "confidential", 1)

        s3.delete_object(Bucket=bucket, Key=victim)  # the approved delete, behind the console's back
        done = await agent.call_tool("storage_backup_create", backup_params(conn, bucket))
        assert not done.is_error and done.structured_content["objects"] == 1
        s3.put_object(Bucket=bucket, Key="src/a.txt", Body=b"a v2", Tagging="classification=restricted")
        pending = await agent.call_tool("storage_backup_restore", restore_params(conn, bucket, True))
        plan = pending.structured_content["plan"]
        assert pending.structured_content["status"] == "pending_approval"
        assert plan["overwritten_protected"]["listed"] == [{"key": "src/a.txt", "classification": "restricted → public"}]
    await sync_to_async(connections.close_all)()  # asgiref's thread connection would keep the test database open
