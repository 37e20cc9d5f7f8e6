"""The security pages: dashboard, new scan with an upload, scan page, findings
list and filters, triage form, scan roots (admins only)."""

import io
import zipfile

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.audit.models import AuditEvent
from apps.core import gateway
from apps.core.models import Job
from apps.infrastructure.models import Environment
from apps.security import uploads
from apps.security.errors import ScanError
from apps.security.models import Finding, Scan, ScanRoot, Upload

from .samples import ALNUM, Gen

User = get_user_model()
g = Gen("views")
TOKEN = "ghp_" + g(ALNUM, 36)


def zipped(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


def test_empty_dashboard_and_lists_for_a_viewer(client_as):
    client = client_as("viewer")
    page = client.get("/security/").content.decode()
    assert "No scan yet." in page and "No open finding." in page
    assert "No finding matches these filters." in client.get("/security/findings/").content.decode()
    assert "No scan yet." in client.get("/security/scans/").content.decode()
    assert client.get("/security/scans/new/").status_code == 403
    assert client.get("/security/roots/").status_code == 403


def test_upload_scan_then_triage_through_the_pages(client_as, make_user, django_capture_on_commit_callbacks):
    client = client_as("operator")
    upload = SimpleUploadedFile("site.zip", zipped({"site/settings.py": f'TOKEN = "{TOKEN}"\n', "site/README.md": "hello"}))
    response = client.post("/security/scans/new/", {"kind": "secrets", "file": upload})
    assert response.status_code == 302
    job_id = response["Location"].rstrip("/").rsplit("/", 1)[1]
    waiting = client.get(response["Location"]).content.decode()
    assert "Waiting for a worker" in waiting and f"/ws/live/job.{job_id}/" in waiting
    with django_capture_on_commit_callbacks(execute=True):  # as on a worker: the job's end commits
        gateway.run_job(job_id)  # what the worker does
    page = client.get(response["Location"]).content.decode()
    assert "github-pat" in page and "site/settings.py:1" in page and TOKEN not in page
    assert "upload:site.zip" in page
    upload = Upload.objects.get()
    assert (upload.name, upload.size) == ("site.zip", len(zipped({"site/settings.py": f'TOKEN = "{TOKEN}"\n', "site/README.md": "hello"})))
    assert not upload.stored_path.exists()  # a scanned upload leaves the disk
    finding = Finding.objects.get(rule="github-pat")
    colleague = make_user("operator")
    response = client.post(
        f"/security/findings/{finding.pk}/triage/", {"status": "triaged", "assignee": colleague.username, "comment": "On it."}
    )
    assert response.status_code == 302
    page = client.get(f"/security/findings/{finding.pk}/").content.decode()
    assert "On it." in page and colleague.username in page and 'id="finding-status">triaged<' in page
    assert AuditEvent.objects.filter(operation="security.scan_secrets", channel="web").exists()
    assert AuditEvent.objects.filter(operation="security.triage_finding", outcome="ok").exists()
    listing = client.get("/security/findings/?severity=critical&kind=secrets&status=triaged").content.decode()
    assert f"/security/findings/{finding.pk}/" in listing
    assert "No finding matches" in client.get("/security/findings/?kind=image").content.decode()


def test_new_scan_form_errors_are_shown(client_as):
    client = client_as("operator")
    page = client.post("/security/scans/new/", {"kind": "secrets"}).content.decode()
    assert "Upload a file or choose a scan root" in page
    page = client.post("/security/scans/new/", {"kind": "history", "file": SimpleUploadedFile("x.py", b"x=1")}).content.decode()
    assert "History scans read a git repository" in page


def test_new_scan_of_a_bucket_and_of_an_image_on_an_engine(client_as, conn, bucket, s3):
    s3.put_object(Bucket=bucket, Key="team/.env", Body=f"GITHUB_TOKEN={TOKEN}\n".encode())
    client = client_as("operator")
    assert f'<option value="{conn.name}">' in client.get("/security/scans/new/").content.decode()
    page = client.post("/security/scans/new/", {"kind": "bucket", "connection": conn.name}).content.decode()
    assert "Choose a storage connection and give the bucket" in page
    response = client.post("/security/scans/new/", {"kind": "bucket", "connection": conn.name, "bucket": bucket, "prefix": "team/"})
    assert response.status_code == 302
    job_id = response["Location"].rstrip("/").rsplit("/", 1)[1]
    gateway.run_job(job_id)
    page = client.get(response["Location"]).content.decode()
    assert f"s3://{bucket}/team/.env:1" in page and "github-pat" in page and TOKEN not in page
    assert not Upload.objects.exists()

    Environment.objects.create(name="staging", engine_url="unix:///nonexistent/docker.sock")
    page = client.post("/security/scans/new/", {"kind": "engine_image", "environment": "staging"}).content.decode()
    assert "Choose an environment and give the image reference" in page
    response = client.post("/security/scans/new/", {"kind": "engine_image", "environment": "staging", "reference": "app:1.4"})
    assert response.status_code == 302
    job = Job.objects.get(pk=response["Location"].rstrip("/").rsplit("/", 1)[1])
    assert (job.operation, job.params) == (
        "security.scan_image",
        {"staged": None, "upload_id": None, "environment": "staging", "reference": "app:1.4"},
    )


def files_under(path) -> list:
    return [p for p in path.rglob("*") if p.is_file()]


def test_an_upload_past_the_size_cap_is_refused_and_nothing_is_stored(client_as, settings, tmp_path, actor_of):
    settings.SECURITY_UPLOAD_MAX_MB = 1
    settings.SECURITY_UPLOAD_DIR = str(tmp_path / "uploads")
    client = client_as("operator")
    oversized = SimpleUploadedFile("big.txt", b"a" * ((1 << 20) + 1))
    response = client.post("/security/scans/new/", {"kind": "secrets", "file": oversized})
    assert response.status_code == 400
    assert "The upload is larger than 1 MB (SECURITY_UPLOAD_MAX_MB)." in response.content.decode()
    assert not Upload.objects.exists() and not Job.objects.exists() and not Scan.objects.exists()
    assert files_under(tmp_path / "uploads") == []
    # A file whose size is only known while it streams in is cut off at the cap too, and its partial copy removed.
    streamed = SimpleUploadedFile("streamed.txt", b"b" * ((1 << 20) + 1))
    streamed.size = None
    with pytest.raises(ScanError, match="larger than 1 MB"):
        uploads.stage(streamed, actor_of(User.objects.get()))
    assert not Upload.objects.exists() and files_under(tmp_path / "uploads") == []
    # At the cap exactly, the upload is staged, then claimed by the scan's call (audited): no staged file is left.
    response = client.post("/security/scans/new/", {"kind": "secrets", "file": SimpleUploadedFile("ok.txt", b"c" * (1 << 20))})
    upload = Upload.objects.get()
    assert response.status_code == 302 and upload.size == 1 << 20
    assert files_under(tmp_path / "uploads") == [upload.stored_path]
    event = AuditEvent.objects.get(operation="security.scan_secrets")
    assert (event.outcome, event.params["upload_id"], event.params["staged"]["token"]) == ("ok", str(upload.pk), "[redacted]")


def test_admin_manages_scan_roots(client_as, tmp_path):
    client = client_as("admin")
    response = client.post("/security/roots/", {"name": "repos", "path": str(tmp_path), "description": "checkouts"})
    assert response.status_code == 302
    assert ScanRoot.objects.get(name="repos").path == str(tmp_path.resolve())
    page = client.post("/security/roots/", {"name": "bad", "path": str(tmp_path / "missing")}).content.decode()
    assert "No such directory" in page
    client.post("/security/roots/repos/remove/")
    assert not ScanRoot.objects.exists()
    assert AuditEvent.objects.filter(operation="security.remove_scan_root", target="repos").exists()


def test_operator_cannot_configure_roots(client_as, actor_of):
    client = client_as("operator")
    assert client.post("/security/roots/", {"name": "x", "path": "/"}).status_code == 403
    assert not ScanRoot.objects.exists()


def test_demo_seed_is_idempotent(db, settings, tmp_path):
    import io as _io

    from apps.security import demo
    from apps.security.models import Advisory

    settings.DATA_DIR = tmp_path
    demo.seed(_io.StringIO())
    demo.seed(_io.StringIO())
    assert Advisory.objects.count() > 2600 and Advisory.objects.filter(source="npm").count() == 2
    assert ScanRoot.objects.get(name="demo").path == str(tmp_path / "security-demo")
    assert (tmp_path / "security-demo/requirements.txt").read_text().startswith("Django==4.2.2")
