"""Anchors copied to a storage bucket (a real S3 server): the off-machine copy
still catches a cut-off tail when the local anchor file is gone."""

import json
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.audit import anchors, offsite, tasks
from apps.audit.anchors import anchor_path, newest_anchor, write_anchor
from apps.audit.offsite import CheckpointError
from apps.audit.verify import verify_chain
from apps.audit.writer import record
from apps.core.resilience import forget_breaker
from apps.storage.client import S3, connect
from tests.storage.conftest import make_connection
from tests.support import processes

from .test_chain import raw


@pytest.fixture(autouse=True)
def checkpoint_file(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_PATH = str(tmp_path / "checkpoints.jsonl")


def record_events(n):
    for i in range(n):
        record(operation="test.op", outcome="ok", channel="system", target=f"t{i}")


@pytest.fixture
def remote(settings, conn, bucket):
    conn.default_encryption = "AES256"
    conn.save()
    settings.AUDIT_CHECKPOINT_BUCKET = f"{conn.name}/{bucket}/audit/head"
    return bucket


def test_each_anchor_is_its_own_encrypted_object(remote, s3):
    record_events(3)
    first = write_anchor()
    record_events(2)
    second = write_anchor()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=remote)["Contents"]]
    assert len(keys) == 2 and keys[0].startswith("audit/head/checkpoint-000000000003-") and keys[0].endswith("Z.json")
    assert keys[1].startswith("audit/head/checkpoint-000000000005-")
    obj = s3.get_object(Bucket=remote, Key=keys[1])
    assert json.loads(obj["Body"].read()) == second and obj["ServerSideEncryption"] == "AES256"
    assert first["anchor"]["seq"] == 3 and newest_anchor() == second


def test_bucket_anchor_catches_a_cut_off_tail_without_the_local_file(remote):
    record_events(10)
    write_anchor()
    anchor_path().unlink()
    raw("DELETE FROM audit_auditevent WHERE seq >= 9")
    result = verify_chain()
    assert not result.ok and result.seq == 10 and "newest events were removed" in result.problem
    with pytest.raises(CommandError, match="before anchor #10"):
        call_command("audit_verify")


def test_newer_file_anchor_wins_over_an_older_bucket_one(remote, settings):
    record_events(2)
    write_anchor()
    record_events(2)
    place, settings.AUDIT_CHECKPOINT_BUCKET = settings.AUDIT_CHECKPOINT_BUCKET, ""
    write_anchor()  # the file only: it is now ahead of the bucket
    settings.AUDIT_CHECKPOINT_BUCKET = place
    assert newest_anchor()["anchor"]["seq"] == 4


def test_unreachable_bucket_fails_clearly_after_the_file_is_written(db, settings):
    dead = make_connection(f"http://127.0.0.1:{processes.free_port()}")
    settings.AUDIT_CHECKPOINT_BUCKET = f"{dead.name}/audit-checkpoints"
    record_events(4)
    try:
        with pytest.raises(CheckpointError, match=f"anchor #4 was not copied to {dead.name}/audit-checkpoints"):
            write_anchor()
        lines = anchor_path().read_text().splitlines()
        assert [json.loads(line)["anchor"]["seq"] for line in lines] == [4]
        with pytest.raises(CommandError, match=f"not verified: The audit anchors in {dead.name}/audit-checkpoints could not be read"):
            call_command("audit_verify")
    finally:
        forget_breaker(f"storage:{dead.name}")


def test_in_an_object_lock_bucket_each_anchor_is_locked_against_deletion(settings, conn, s3):
    locked = f"lock-{conn.name}"
    s3.create_bucket(Bucket=locked, ObjectLockEnabledForBucket=True)
    settings.AUDIT_CHECKPOINT_BUCKET = f"{conn.name}/{locked}/anchors"
    record_events(3)
    write_anchor()
    (obj,) = s3.list_object_versions(Bucket=locked)["Versions"]
    head = s3.head_object(Bucket=locked, Key=obj["Key"])
    assert head["ObjectLockMode"] == "GOVERNANCE" and head["ObjectLockRetainUntilDate"].year >= 2027
    with pytest.raises(s3.exceptions.ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=locked, Key=obj["Key"], VersionId=obj["VersionId"])
    s3.delete_object(Bucket=locked, Key=obj["Key"])  # only hides it behind a delete marker: the version stays
    assert [v["VersionId"] for v in s3.list_object_versions(Bucket=locked)["Versions"]] == [obj["VersionId"]]


@pytest.fixture
def cut_after_two_anchors(settings, conn, s3):
    """An Object Lock bucket holding anchors #3 and #6; then the local anchor file is lost and the
    tail #5–#6 cut from the database. The attacker holds the bucket's credentials (not the keys)."""
    locked = f"lock-{conn.name}"
    s3.create_bucket(Bucket=locked, ObjectLockEnabledForBucket=True)
    settings.AUDIT_CHECKPOINT_BUCKET = f"{conn.name}/{locked}/anchors"
    record_events(3)
    older = write_anchor()
    record_events(3)
    newest = write_anchor()
    anchor_path().unlink()
    raw("DELETE FROM audit_auditevent WHERE seq >= 5")
    (_, newest_key) = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=locked)["Contents"])
    return locked, newest_key, older, newest


def test_an_older_anchor_over_the_newest_or_under_a_later_name_is_refused(cut_after_two_anchors, s3):
    """Whoever holds the bucket's credentials puts an older genuine anchor over the newest one, or
    under a later name, so that a cut tail looks anchored no further: verification refuses."""
    locked, newest_key, older, _ = cut_after_two_anchors
    s3.put_object(Bucket=locked, Key=newest_key, Body=json.dumps(older).encode())  # a new version over the locked one
    with pytest.raises(CommandError, match="does not hold the anchor its name says"):
        call_command("audit_verify")
    s3.delete_object(Bucket=locked, Key=newest_key)  # the newest name hidden; the older anchor under a later one
    s3.put_object(Bucket=locked, Key=newest_key.replace("000000000006-", "000000000099-"), Body=json.dumps(older).encode())
    with pytest.raises(CommandError, match="does not hold the anchor its name says"):
        call_command("audit_verify")


@pytest.mark.parametrize("body", [b"not json", "same"], ids=["garbage", "another-anchor-of-the-same-seq"])
def test_any_other_version_over_the_newest_anchor_is_refused(cut_after_two_anchors, s3, body):
    """A new version over the newest anchor, whatever it holds (bytes that are no anchor, or another
    signed anchor of the same head): the console writes each object once, so any other version is tampering."""
    locked, newest_key, _, newest = cut_after_two_anchors
    if body == "same":
        body = json.dumps(anchors.signed(newest["anchor"] | {"reason": "manual"})).encode()
    s3.put_object(Bucket=locked, Key=newest_key, Body=body)
    with pytest.raises(CommandError, match="does not hold the anchor its name says"):
        call_command("audit_verify")


def test_a_delete_marker_over_the_newest_anchor_hides_nothing_and_fails_verification(cut_after_two_anchors, s3):
    """A DELETE without a version id is allowed under Object Lock: it adds a delete marker, and
    listings (list_objects_v2) no longer show the newest anchor. Verification still finds it, and
    fails on the marker: before and after a beat re-anchors the cut log, and after the marker is
    covered by a new copy; once the marker is removed, the cut is caught through the anchor it hid."""
    locked, newest_key, older, newest = cut_after_two_anchors
    s3.delete_object(Bucket=locked, Key=newest_key)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=locked)["Contents"]] == [offsite.key_for("anchors/", older)]
    hidden = r"the newest anchor \(#6\), has a delete marker .* tampered with"
    with pytest.raises(CommandError, match=hidden):
        call_command("audit_verify")
    write_anchor("manual")  # the file is gone: the cut log (head #4) is anchored anew, in the file and the bucket
    with pytest.raises(CommandError, match=hidden):
        call_command("audit_verify")
    s3.put_object(Bucket=locked, Key=newest_key, Body=json.dumps(newest).encode())  # the copy put back over the marker
    with pytest.raises(CommandError, match=hidden):
        call_command("audit_verify")
    (marker,) = s3.list_object_versions(Bucket=locked, Prefix=newest_key)["DeleteMarkers"]
    s3.delete_object(Bucket=locked, Key=newest_key, VersionId=marker["VersionId"])  # removed after investigating
    with pytest.raises(CommandError, match="the log ends before anchor #6"):
        call_command("audit_verify")


def test_a_delete_marker_over_the_files_newest_anchor_fails_verification_after_the_beat_copies_it_back(remote, s3):
    """The local file still holds the newest anchor, so nothing is hidden from the check; the marker
    is tampering all the same. The idle beat's HEAD sees "missing" and puts a copy back over it."""
    s3.put_bucket_versioning(Bucket=remote, VersioningConfiguration={"Status": "Enabled"})
    record_events(3)
    tasks.anchor()
    (key,) = anchor_keys(s3, remote)
    s3.delete_object(Bucket=remote, Key=key)
    assert anchor_keys(s3, remote) == [] and tasks.anchor() is None and anchor_keys(s3, remote) == [key]
    with pytest.raises(CommandError, match=r"the newest anchor \(#3\), has a delete marker"):
        call_command("audit_verify")


def anchor_keys(s3, bucket):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_an_idle_console_adds_no_anchor_object_until_the_head_moves(remote, s3, monkeypatch):
    start = timezone.now()
    periods = iter(range(1, 100))
    monkeypatch.setattr(anchors, "clock", lambda: start + timedelta(seconds=10 * next(periods)))
    record_events(3)
    tasks.anchor()
    for _ in range(6):  # six beat periods with nothing written since
        assert tasks.anchor() is None
    assert len(anchor_keys(s3, remote)) == 1 and len(anchor_path().read_text().splitlines()) == 1
    record_events(1)
    tasks.anchor()
    (_, newest_key) = anchor_keys(s3, remote)
    assert newest_key.startswith("audit/head/checkpoint-000000000004-")
    assert len(anchor_path().read_text().splitlines()) == 2
    anchor_path().unlink()
    raw("DELETE FROM audit_auditevent WHERE seq = 4")
    assert "the log ends before anchor #4" in verify_chain().problem


def test_an_anchor_the_bucket_lacks_is_copied_by_the_next_idle_beat(remote, s3, settings):
    record_events(2)
    place, settings.AUDIT_CHECKPOINT_BUCKET = settings.AUDIT_CHECKPOINT_BUCKET, ""
    entry = write_anchor()  # the file only (as when the bucket was down)
    settings.AUDIT_CHECKPOINT_BUCKET = place
    assert anchor_keys(s3, remote) == [] and tasks.anchor() is None
    (key,) = anchor_keys(s3, remote)
    assert json.loads(s3.get_object(Bucket=remote, Key=key)["Body"].read()) == entry
    assert tasks.anchor() is None and anchor_keys(s3, remote) == [key]
    assert len(anchor_path().read_text().splitlines()) == 1


def test_the_newest_of_many_anchor_objects_is_found_without_listing_them_all(remote, s3, conn, monkeypatch):
    names = "audit/head/checkpoint-"
    seqs = sorted(random.Random(7).sample(range(1, 5_000_000), 1500))

    def put(seq, stamp="20260101T000000000000Z"):
        s3.put_object(Bucket=remote, Key=f"{names}{seq:012d}-{stamp}.json", Body=b"{}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, seqs))
    put(seqs[-1], "20260102T000000000000Z")  # the same head anchored again later: that copy is the newest
    listed = []
    call = S3.call

    def counting(self, method, **params):
        page = call(self, method, **params)
        listed.extend(page.get("Contents", []) + page.get("Versions", []) + page.get("DeleteMarkers", []))
        return page

    monkeypatch.setattr(S3, "call", counting)
    s3_conn = connect(conn.name)
    newest_key = f"{names}{seqs[-1]:012d}-20260102T000000000000Z.json"
    assert offsite._newest_key(s3_conn, remote, names, 0) == newest_key
    assert len(listed) < 100  # a listing of every anchor returns 1,501
    assert offsite._newest_key(s3_conn, remote, names, seqs[700]) == newest_key
    assert offsite._newest_key(s3_conn, remote, names, seqs[-1]) is None
    listed.clear()  # the versions of the newest key, and of any hidden beyond it (none): as few entries
    assert [v["Key"] for v in offsite._newest_versions(s3_conn, remote, names, 0)] == [newest_key]
    assert len(listed) < 100
