"""The upload page in headless Chromium: the file is hashed in the browser, streamed
to the console, and lands in the bucket byte for byte with its classification."""

import hashlib

import pytest

from .conftest import blocks

pytestmark = [pytest.mark.peer, pytest.mark.browser, pytest.mark.django_db(transaction=True)]
MIB = 1024 * 1024


def test_browser_upload_streams_a_file_with_progress(login_page, make_user, console_server, conn, s3, bucket, tmp_path):
    data = b"".join(blocks(11 * MIB + 5, b"browser"))  # three parts of the console's 5 MiB
    path = tmp_path / "quarterly report ü.bin"
    path.write_bytes(data)
    page = login_page(make_user("operator"))
    page.goto(f"{console_server}/storage/c/{conn.name}/b/{bucket}/upload/?prefix=in/")
    page.set_input_files("#id_file", str(path))
    assert page.input_value("#id_key") == "in/quarterly report ü.bin"
    page.select_option("#id_classification", "confidential")
    page.fill("#id_metadata", "owner=finance")
    page.click("#upload-button")
    page.wait_for_selector("#upload-status:has-text('Uploaded and verified')", timeout=60000)
    assert page.get_attribute("#upload-progress", "value") == "100"
    assert hashlib.sha256(data).hexdigest() in page.inner_text("#upload-result")  # the browser's own SHA-256 matched
    stored = s3.get_object(Bucket=bucket, Key="in/quarterly report ü.bin")
    assert stored["Body"].read() == data and stored["Metadata"]["owner"] == "finance"
    assert s3.get_object_tagging(Bucket=bucket, Key="in/quarterly report ü.bin")["TagSet"] == [
        {"Key": "classification", "Value": "confidential"}
    ]
    page.click("#uploaded-object")
    page.wait_for_selector("#classification:has-text('confidential')")


def test_browser_shows_field_errors_before_sending(login_page, make_user, console_server, conn, bucket, tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"hello")
    page = login_page(make_user("operator"))
    page.goto(f"{console_server}/storage/c/{conn.name}/b/{bucket}/upload/")
    page.set_input_files("#id_file", str(path))
    page.fill("#id_metadata", "Not A Name=1")
    page.click("#upload-button")
    page.wait_for_selector("[data-errors-for=metadata] li")
    assert "lower-case" in page.inner_text("[data-errors-for=metadata]")


def test_browser_uploads_straight_to_the_bucket(login_page, make_user, console_server, moto_server, s3, bucket, tmp_path):
    from apps.audit.models import AuditEvent

    from .conftest import make_connection

    conn = make_connection(moto_server, direct_uploads=True)  # moto's server answers CORS preflights for any origin
    data = b"".join(blocks(64 * MIB + 5, b"direct"))  # nine parts of 8 MiB (STORAGE_DIRECT_PART_SIZE): two signing batches of 8
    path = tmp_path / "straight ü.bin"
    path.write_bytes(data)
    page = login_page(make_user("operator"))
    page.goto(f"{console_server}/storage/c/{conn.name}/b/{bucket}/upload/?prefix=in/")
    puts = []  # (to the bucket?) of every PUT the page sends
    page.on("request", lambda r: puts.append(r.url.startswith(moto_server)) if r.method == "PUT" else None)
    page.set_input_files("#id_file", str(path))
    page.select_option("#id_classification", "restricted")
    page.fill("#id_metadata", "owner=finance")
    page.click("#upload-button")
    page.wait_for_selector("#upload-status.ok, #upload-status.errorlist", timeout=60000)
    assert page.inner_text("#upload-status") == "Uploaded and verified."
    stored = s3.get_object(Bucket=bucket, Key="in/straight ü.bin", ChecksumMode="ENABLED")
    assert stored["Body"].read() == data and stored["Metadata"]["owner"] == "finance"
    assert stored["ChecksumSHA256"] in page.inner_text("#upload-result")  # the endpoint's checksum of the bytes = the browser's
    # The bytes went to the bucket (nine part PUTs), none to the console: no streamed storage.upload ran.
    assert puts == [True] * 9
    assert AuditEvent.objects.filter(operation="storage.sign_parts", outcome="ok").count() == 2  # parts 1-8, then 9
    assert not AuditEvent.objects.filter(operation="storage.upload").exists()
    assert AuditEvent.objects.filter(operation="storage.complete_upload", outcome="ok").count() == 1
    page.click("#uploaded-object")
    page.wait_for_selector("#classification:has-text('restricted')")
