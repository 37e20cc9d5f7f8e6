"""Uploads through the gateway: the New scan page stages a file's bytes (no row), and the scan operation claims
it inside the gateway, audited, as the caller who staged it. Another person's or an agent's call, a forged or
replayed token, a file that is not what the call says: refused, audited, nothing stored. What nobody claims
is swept (an injected clock and file ages, no sleeping)."""

from __future__ import annotations

import os
import time
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.audit.models import AuditEvent
from apps.core import gateway, operations
from apps.core.errors import InvalidInput
from apps.core.models import Job
from apps.security import upload_services, uploads
from apps.security.errors import ScanError
from apps.security.models import Scan, Upload

from .samples import ALNUM, Gen

g = Gen("upload-claims")
TOKEN = "ghp_" + g(ALNUM, 36)
CONTENT = f'GITHUB_TOKEN = "{TOKEN}"\n'.encode()


@pytest.fixture
def upload_dir(settings, tmp_path):
    settings.SECURITY_UPLOAD_DIR = str(tmp_path / "uploads")
    return tmp_path / "uploads"


def files_under(path) -> list:
    return sorted(p for p in path.rglob("*") if p.is_file())


def staged_files(upload_dir) -> list:
    return files_under(upload_dir / "staging")


def test_the_page_stages_and_the_scan_claims_the_file(client_as, upload_dir, django_capture_on_commit_callbacks):
    client = client_as("operator")
    response = client.post("/security/scans/new/", {"kind": "secrets", "file": SimpleUploadedFile("app.py", CONTENT)})
    assert response.status_code == 302
    upload = Upload.objects.get()
    assert (upload.name, upload.size, upload.uploaded_by) == ("app.py", len(CONTENT), client.user)
    assert staged_files(upload_dir) == [] and upload.stored_path.read_bytes() == CONTENT
    event = AuditEvent.objects.get(operation="security.scan_secrets")
    assert (event.outcome, event.target, event.params["upload_id"]) == ("ok", "upload app.py", str(upload.pk))
    with django_capture_on_commit_callbacks(execute=True):  # the job's end, committed, releases the file
        gateway.run_job(str(Job.objects.get().pk))
    assert Scan.objects.get().status == Scan.DONE and not upload.stored_path.exists()


def test_another_persons_token_is_refused_and_changes_nothing(make_user, actor_of, upload_dir, stage):
    alice, mallory = make_user("operator"), make_user("operator")
    staged = stage(alice, "app.py", CONTENT)
    before = staged_files(upload_dir)
    with pytest.raises(ScanError, match="No upload staged by you has that token"):
        gateway.invoke("security.scan_secrets", actor_of(mallory), {"staged": staged})
    assert not Upload.objects.exists() and not Job.objects.exists()
    assert staged_files(upload_dir) == before and len(before) == 1  # Alice's file is untouched
    refused = AuditEvent.objects.get(operation="security.scan_secrets", actor=mallory.username)
    assert refused.outcome != "ok" and "No upload staged by you" in refused.error
    assert staged["token"] not in str(refused.params)
    # Alice still claims it, once: a replay of the same token (hers) finds nothing.
    outcome = gateway.invoke("security.scan_secrets", actor_of(alice), {"staged": staged})
    assert outcome.status == "queued" and Upload.objects.get().uploaded_by == alice
    with pytest.raises(ScanError, match="claimed once"):
        gateway.invoke("security.scan_secrets", actor_of(alice), {"staged": staged})
    assert Upload.objects.count() == 1 and Job.objects.count() == 1


def test_an_agent_acting_for_the_same_person_cannot_claim_what_their_browser_staged(make_user, make_token, actor_of, upload_dir, stage):
    alice = make_user("operator")
    staged = stage(alice, "app.py", CONTENT)  # a browser session: no credential
    token, _raw = make_token(alice)
    agent = actor_of(alice, token)
    with pytest.raises(ScanError, match="No upload staged by you"):
        gateway.invoke("security.scan_secrets", agent, {"staged": staged}, "mcp")
    assert not Upload.objects.exists() and len(staged_files(upload_dir)) == 1
    # What the agent's own credential staged, it can claim.
    own = stage(alice, "own.py", CONTENT, actor=agent)
    assert gateway.invoke("security.scan_secrets", agent, {"staged": own}, "mcp").status == "queued"
    assert Upload.objects.get().name == "own.py"


@pytest.mark.parametrize(
    "token", ["../../../etc/passwd", "../staging/" + "a" * 32, "a" * 42, "a" * 44, "a" * 42 + "/", "a" * 42 + ".", "", "A" * 42 + "\x00"]
)
def test_a_malformed_token_is_refused_before_anything_is_read(make_user, actor_of, upload_dir, stage, token):
    user = make_user("operator")
    staged = {**stage(user, "app.py", CONTENT), "token": token}
    with pytest.raises(InvalidInput, match=r"staged\.token: String should match pattern"):
        gateway.invoke("security.scan_source", actor_of(user), {"staged": staged})
    assert not Upload.objects.exists() and not Job.objects.exists()
    with pytest.raises(ScanError, match="not a staged upload's token"):  # the claim itself checks it too
        uploads.claim(actor_of(user), uploads.Staged(**staged))
    assert len(staged_files(upload_dir)) == 1


@pytest.mark.parametrize("change", [{"size": len(CONTENT) + 1}, {"sha256": "0" * 64}, {"size": 0}])
def test_a_file_that_is_not_what_the_call_says_is_refused_and_removed(make_user, actor_of, upload_dir, stage, change):
    user = make_user("operator")
    staged = {**stage(user, "app.py", CONTENT), **change}
    with pytest.raises(ScanError, match="not the size and SHA-256 the call gives"):
        gateway.invoke("security.audit_dependencies", actor_of(user), {"staged": staged})
    assert not Upload.objects.exists() and not Job.objects.exists() and files_under(upload_dir) == []


def test_a_staged_file_over_the_cap_is_refused_at_the_claim(make_user, actor_of, upload_dir, stage, settings):
    user = make_user("operator")
    staged = stage(user, "big.bin", b"x" * ((1 << 20) + 1))
    settings.SECURITY_UPLOAD_MAX_MB = 1  # lowered between staging and the claim
    with pytest.raises(ScanError, match="larger than 1 MB"):
        gateway.invoke("security.scan_image", actor_of(user), {"staged": staged})
    assert not Upload.objects.exists() and files_under(upload_dir) == []


def test_a_caller_never_names_an_upload_itself(make_user, actor_of, upload_dir, stage):
    """upload_id is the console's (set when it claims `staged`): an agent cannot point a scan at someone's upload."""
    alice, mallory = make_user("operator"), make_user("operator")
    gateway.invoke("security.scan_secrets", actor_of(alice), {"staged": stage(alice, "app.py", CONTENT)})
    upload = Upload.objects.get()
    for name in ("security.scan_secrets", "security.scan_image"):
        with pytest.raises(ScanError, match="upload_id is not an input"):
            gateway.invoke(name, actor_of(mallory), {"upload_id": str(upload.pk)})
        schema = operations.get(name).input.model_json_schema()  # what MCP tools/list shows
        assert "staged" in schema["properties"] and "upload_id" not in schema["properties"]
    assert Job.objects.count() == 1
    # And a job never reads an upload that is not its requester's.
    job = Job.objects.get()
    Job.objects.filter(pk=job.pk).update(requested_by=mallory)
    gateway.run_job(str(job.pk))
    job.refresh_from_db()
    assert job.status == Job.FAILED and "does not exist any more" in job.error and not Scan.objects.exists()


def test_a_call_refused_after_staging_leaves_no_staged_file(client_as, settings, upload_dir):
    settings.OPS_RATE_LIMITS = {**settings.OPS_RATE_LIMITS, "write": "1/m"}
    client = client_as("operator")
    assert client.post("/security/scans/new/", {"kind": "secrets", "file": SimpleUploadedFile("a.py", CONTENT)}).status_code == 302
    response = client.post("/security/scans/new/", {"kind": "secrets", "file": SimpleUploadedFile("b.py", CONTENT)})
    assert response.status_code == 429 and "Rate limit" in response.content.decode()
    assert Upload.objects.get().name == "a.py" and staged_files(upload_dir) == []


def test_the_sweep_removes_only_old_staged_files_and_stored_ones_no_job_reads(make_user, actor_of, upload_dir, stage, settings):
    from apps.accounts.actors import Actor

    user = make_user("operator")
    old, fresh = stage(user, "old.py", CONTENT), stage(user, "fresh.py", CONTENT)
    old_file, fresh_file = (uploads._staged_path(actor_of(user), s["token"]) for s in (old, fresh))
    gateway.invoke("security.scan_secrets", actor_of(user), {"staged": stage(user, "kept.py", CONTENT)})
    recorded = Upload.objects.get().stored_path  # its job is queued: it will read it
    orphan = upload_dir / str(uuid.uuid4())  # a claim whose call rolled back after the rename
    orphan.write_bytes(b"x")
    hour_ago = time.time() - 3600 - 60
    for path in (old_file, recorded, orphan):
        os.utime(path, (hour_ago, hour_ago))
    settings.SECURITY_UPLOAD_STAGED_MINUTES = 60
    outcome = gateway.invoke("security.sweep_staged_uploads", Actor.system(), {}, "system")
    assert outcome.result.removed == 2
    assert not old_file.exists() and not orphan.exists() and fresh_file.exists() and recorded.exists()
    assert AuditEvent.objects.get(operation="security.sweep_staged_uploads").outcome == "ok"
    with pytest.raises(ScanError, match="No upload staged by you"):  # swept: gone for good
        gateway.invoke("security.scan_secrets", actor_of(user), {"staged": old})
    # With the clock injected past the fresh file's hour, it goes too; the file of a job that has not ended never does.
    in_use = upload_services.uploads_in_use()
    assert uploads.sweep(now=time.time() + 3601, max_age_seconds=3600, in_use=in_use) == [f"staging/{fresh_file.name}"]
    assert recorded.exists()


def test_the_sweep_is_scheduled():
    from apps.security import tasks
    from opsconsole.settings import CELERY_BEAT_SCHEDULE

    assert CELERY_BEAT_SCHEDULE["security-sweep-staged-uploads"]["task"] == tasks.sweep_staged_uploads.name
