"""security.scan_bucket against a real S3 server (moto's, tests/storage/conftest.py):
objects listed page by page with the continuation token, streamed through the
storage connection, skipped like files (size cap, binaries, allow-lists), and
findings located as s3://bucket/key with masked previews only."""

import pytest

from apps.audit.models import AuditEvent
from apps.security.models import Finding, Scan

from .samples import ALNUM, Gen

g = Gen("buckets")
STRIPE = "sk_live_" + g(ALNUM, 24)
TOKEN = "ghp_" + g(ALNUM, 36)
IGNORED = "ghp_" + g(ALNUM, 36)
DB_PASSWORD = g(ALNUM, 16)
IN_BIG = "sk_live_" + g(ALNUM, 24)
IN_BINARY = "ghp_" + g(ALNUM, 36)
ALLOWED = "sk_live_" + g(ALNUM, 24)
SECRETS = (STRIPE, TOKEN, IGNORED, DB_PASSWORD, IN_BIG, IN_BINARY, ALLOWED)
UNICODE_KEY = "docs/notes for ops – ünïcode.md"

OBJECTS = {
    "config/app.env": f"STRIPE_KEY={STRIPE}\n",
    UNICODE_KEY: f"# Notes\nclone with https://{TOKEN}@github.com/ops/infra\n",
    "deploy/settings.py": f'DATABASE_URL = "postgres://app:{DB_PASSWORD}@db.internal:5432/app"\n'
    f'LEGACY = "{IGNORED}"  # secret-scan:ignore\n',
    "deploy/README.md": "Nothing secret here.\n",
    "logs/big.log": "x" * (3 << 19) + f"\nSTRIPE_KEY={IN_BIG}\n",  # 1.5 MB: above the 1 MB cap of these tests
    "data/blob.dat": "\x00\x01binary" + f"GITHUB_TOKEN={IN_BINARY}\n",
    "assets/logo.png": "not really a png",
    "fixtures/fake.env": f"STRIPE_KEY={ALLOWED}\n",
    "deploy/": "",  # a folder placeholder, as some tools create
}


@pytest.fixture
def filled(s3, bucket, conn, settings):
    settings.SECURITY_MAX_FILE_MB = 1
    settings.SECURITY_BUCKET_PAGE_SIZE = 2  # 9 objects: five pages, four continuation tokens
    for key, text in OBJECTS.items():
        s3.put_object(Bucket=bucket, Key=key, Body=text.encode())
    return conn, bucket


def scan_bucket(run_scan, user, conn, bucket, **params):
    return run_scan(user, "security.scan_bucket", {"connection": conn.name, "bucket": bucket, **params})


def test_bucket_scan_finds_planted_secrets_and_skips_like_files(filled, make_user, run_scan):
    conn, bucket = filled
    user = make_user("operator")
    job, scan = scan_bucket(run_scan, user, conn, bucket, allow_paths=["fixtures/*"])
    assert job.status == "succeeded", job.error
    assert scan.target == f"s3:{conn.name}:{bucket}/"
    found = {(f.rule, f.path, f.line) for f in Finding.objects.filter(target=scan.target)}
    assert found == {
        ("stripe-secret-key", f"s3://{bucket}/config/app.env", 1),
        ("github-pat", f"s3://{bucket}/{UNICODE_KEY}", 2),
        ("database-url-password", f"s3://{bucket}/deploy/settings.py", 1),
    }
    assert scan.stats["skipped"] == {"larger than 1 MB": 1, "binary": 2, "allow-listed path": 1}
    assert scan.stats["files"] == 4 and job.progress == 100
    assert f"8 objects under s3://{bucket}/; 4 scanned." in scan.stats["notes"]
    for finding in Finding.objects.all():
        assert "****" in finding.preview
        for secret in SECRETS:
            assert secret not in f"{finding.preview} {finding.title} {finding.detail} {finding.path}"
    events = AuditEvent.objects.filter(operation="security.scan_bucket").order_by("seq")
    assert [(e.channel, e.outcome, e.target) for e in events] == [
        ("web", "ok", f"{conn.name}:{bucket}/"),
        ("worker", "ok", f"{conn.name}:{bucket}/"),
    ]
    assert events[0].params["allow_paths"] == ["fixtures/*"]


def test_rescan_fixes_what_is_gone_and_a_prefix_narrows(filled, s3, make_user, run_scan):
    conn, bucket = filled
    user = make_user("operator")
    job, first = scan_bucket(run_scan, user, conn, bucket)
    assert job.status == "succeeded", job.error
    assert Finding.objects.filter(target=first.target, rule="stripe-secret-key").count() == 2  # fixtures/ not allow-listed now
    s3.delete_object(Bucket=bucket, Key="config/app.env")
    job, second = scan_bucket(run_scan, user, conn, bucket)
    assert second.stats["fixed"] == 1
    assert Finding.objects.get(path=f"s3://{bucket}/config/app.env").status == "fixed"
    job, docs = scan_bucket(run_scan, user, conn, bucket, prefix="docs/")
    assert docs.target == f"s3:{conn.name}:{bucket}/docs/" and docs.stats["files"] == 1
    assert [f.path for f in Finding.objects.filter(target=docs.target)] == [f"s3://{bucket}/{UNICODE_KEY}"]


def test_bucket_scans_need_the_storage_read_permissions(filled, make_user, run_scan, without_permission):
    conn, bucket = filled
    user = make_user("operator")
    without_permission("operator", "storage.download_objects")  # what storage.fetch needs
    job, scan = scan_bucket(run_scan, user, conn, bucket)
    assert job.status == "failed" and "storage.download_objects" in job.error and "storage.fetch" in job.error
    assert scan is None and not Scan.objects.exists()
    assert AuditEvent.objects.get(operation="security.scan_bucket", channel="worker").outcome == "denied"


def test_missing_bucket_and_connection(conn, make_user, run_scan):
    user = make_user("operator")
    job, scan = scan_bucket(run_scan, user, conn, "no-such-bucket-here")
    assert job.status == "failed" and "does not exist" in job.error
    assert scan.status == "failed" and "does not exist" in scan.error
    job, scan = run_scan(user, "security.scan_bucket", {"connection": "nowhere", "bucket": "some-bucket"})
    assert job.status == "failed" and "no storage connection named 'nowhere'" in job.error and scan is None


def test_a_bucket_above_the_object_bound_is_refused(filled, make_user, run_scan, settings):
    conn, bucket = filled
    settings.SECURITY_BUCKET_MAX_OBJECTS = 5
    job, scan = scan_bucket(run_scan, make_user("operator"), conn, bucket)
    assert job.status == "failed" and "more than 5 objects: scan a narrower prefix" in job.error
    assert scan.status == "failed" and not Finding.objects.exists()
