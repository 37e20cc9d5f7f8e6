"""The storage connection form: prefilled from what is stored, its keys write-only (never
rendered, kept when left empty), saved and tested through the gateway (audited); the bucket
list a test brings back is what the generic forms then suggest."""

import pytest

from apps.audit.models import AuditEvent
from apps.storage.models import Connection

pytestmark = [pytest.mark.peer, pytest.mark.django_db]
KEY_ID, SECRET = "AKIAEDITFORM00000001", "edit-form-secret-9f8e7d6c"


@pytest.fixture
def stored(moto_server):
    return Connection.objects.create(
        name="edited", endpoint_url=moto_server, region="eu-west-1", addressing_style="path", credentials=Connection.STORED,
        access_key_id=KEY_ID, secret_access_key=SECRET, default_encryption="aws:kms", kms_key_id="alias/backups", verify_tls=False,
        direct_uploads=True,
    )  # fmt: skip


def test_edit_is_prefilled_and_keeps_the_stored_keys(client_as, stored, moto_server):
    client = client_as("admin")
    page = client.get("/storage/c/edited/edit/").content.decode()
    assert 'name="name" value="edited"' in page and "disabled" in page.split('name="name"')[1].split(">")[0]
    assert f'value="{moto_server}"' in page and 'value="alias/backups"' in page and 'value="aws:kms" selected' in page
    assert 'name="verify_tls" id="id_verify_tls">' in page  # unchecked, as stored: saving does not turn it back on
    assert "checked" in page.split('name="direct_uploads"')[1].split(">")[0]  # checked, as stored: saving keeps it on
    assert KEY_ID not in page and SECRET not in page and "leave empty to keep it" in page

    form = {"name": "ignored-rename", "endpoint_url": moto_server, "region": "eu-central-1", "addressing_style": "path",
            "credentials": "stored", "env_prefix": "", "access_key_id": "", "secret_access_key": "",
            "default_encryption": "aws:kms", "kms_key_id": "alias/backups"}  # fmt: skip
    response = client.post("/storage/c/edited/edit/", form)
    assert response.status_code == 302
    saved = Connection.objects.get(name="edited")
    assert (saved.region, saved.verify_tls, saved.kms_key_id) == ("eu-central-1", False, "alias/backups")
    assert (saved.access_key_id, saved.secret_access_key) == (KEY_ID, SECRET)
    assert not Connection.objects.filter(name="ignored-rename").exists()  # the name is not editable
    event = AuditEvent.objects.get(operation="storage.connection_save")
    assert (event.outcome, event.target) == ("ok", "edited") and SECRET not in str(event.params)

    one_key = client.post("/storage/c/edited/edit/", {**form, "access_key_id": "AKIANEW"})
    assert one_key.status_code == 422 and "give both the access key id and the secret access key" in one_key.content.decode()
    assert Connection.objects.get(name="edited").access_key_id == KEY_ID


def test_only_admins_edit_and_test(client_as, stored):
    operator = client_as("operator")
    assert operator.get("/storage/c/edited/edit/").status_code == 403
    assert operator.post("/storage/c/edited/test/").status_code == 403
    assert "/storage/c/edited/edit/" not in operator.get("/storage/").content.decode()


def test_testing_a_connection_lists_its_buckets_and_feeds_the_bucket_suggestions(client_as, conn, s3, bucket):
    client = client_as("admin")
    response = client.post(f"/storage/c/{conn.name}/test/", follow=True)
    assert f"{conn.name} answers:" in response.content.decode()
    assert AuditEvent.objects.filter(operation="storage.buckets", target=conn.name, outcome="ok").exists()

    page = client.get("/operations/storage.list/").content.decode()
    assert f'<option value="{conn.name}">{conn.name}</option>' in page  # the connection: a select of what exists
    assert 'list="id_bucket-names"' in page and f'<option value="{bucket}">on {conn.name}</option>' in page
    unknown = client.post("/operations/storage.list/", {"connection": "nope", "bucket": bucket})
    assert unknown.status_code == 422 and "Select a valid choice" in unknown.content.decode()


def test_a_failing_connection_test_says_why(client_as, stored):
    Connection.objects.filter(pk=stored.pk).update(endpoint_url="http://127.0.0.1:9")  # nothing listens
    response = client_as("admin").post("/storage/c/edited/test/", follow=True)
    assert "Connection test failed: " in response.content.decode() and "answers" not in response.content.decode()
    assert AuditEvent.objects.get(operation="storage.buckets", target="edited").outcome == "failed"
