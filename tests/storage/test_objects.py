"""Browsing, reading and downloading objects on a real S3 server, through the gateway
(as agents do) and through the pages (as people do)."""

import hashlib
import re
import urllib.request
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from django.utils.http import content_disposition_header

from apps.audit.models import AuditEvent
from apps.core.errors import InvalidInput, PermissionDenied
from apps.core.gateway import invoke

pytestmark = [pytest.mark.peer, pytest.mark.django_db]

ODD_KEYS = ["reports 2024/ünïcødé €.txt", "../../etc/passwd", "a/./b/../c.txt"]


@pytest.fixture
def filled(s3, bucket):
    s3.put_object(Bucket=bucket, Key="docs/readme.md", Body=b"# hello\n", ContentType="text/markdown")
    s3.put_object(Bucket=bucket, Key="docs/img/logo.png", Body=b"\x89PNG....")
    s3.put_object(
        Bucket=bucket,
        Key="secret/plan.txt",
        Body=b"top secret",
        ServerSideEncryption="AES256",
        Tagging="classification=restricted&owner=ops",
        Metadata={"sha256": hashlib.sha256(b"top secret").hexdigest(), "team": "red"},
        StorageClass="STANDARD_IA",
    )
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"logs/{i:02d}.log", Body=b"x" * (i + 1))
    for key in ODD_KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    return bucket


def test_buckets_and_folders(make_user, actor_of, conn, filled):
    actor = actor_of(make_user("viewer"))
    names = [b.name for b in invoke("storage.buckets", actor, {"connection": conn.name}).result.buckets]
    assert filled in names
    top = invoke("storage.list", actor, {"connection": conn.name, "bucket": filled}).result
    assert top.folders == ["../", "a/", "docs/", "logs/", "reports 2024/", "secret/"]
    assert top.objects == []
    docs = invoke("storage.list", actor, {"connection": conn.name, "bucket": filled, "prefix": "docs/"}).result
    assert docs.folders == ["docs/img/"]
    assert [(o.key, o.size, o.storage_class) for o in docs.objects] == [("docs/readme.md", 8, "STANDARD")]


def test_listing_pages_on_with_the_token_and_counts_versions(make_user, actor_of, conn, s3, filled):
    s3.put_bucket_versioning(Bucket=filled, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=filled, Key="logs/01.log", Body=b"second version")
    s3.put_object(Bucket=filled, Key="logs/03.log", Body=b"second version")
    s3.put_object(Bucket=filled, Key="logs/03.log", Body=b"third version")
    actor = actor_of(make_user("viewer"))
    params = {"connection": conn.name, "bucket": filled, "prefix": "logs/", "page_size": 2, "include_versions": True}
    seen, versions, token = [], {}, None
    while True:
        page = invoke("storage.list", actor, {**params, **({"token": token} if token else {})}).result
        seen += [o.key for o in page.objects]
        versions.update({o.key: o.versions for o in page.objects})
        token = page.next_token
        if not token:
            break
    assert seen == [f"logs/{i:02d}.log" for i in range(5)]
    assert versions == {"logs/00.log": 1, "logs/01.log": 2, "logs/02.log": 1, "logs/03.log": 3, "logs/04.log": 1}
    with pytest.raises(InvalidInput):
        invoke("storage.list", actor, {**params, "token": "not-a-token"})


def test_head_shows_metadata_tags_classification_and_encryption(make_user, actor_of, conn, filled):
    info = invoke(
        "storage.head", actor_of(make_user("viewer")), {"connection": conn.name, "bucket": filled, "key": "secret/plan.txt"}
    ).result
    assert info.size == 10 and info.storage_class == "STANDARD_IA"
    assert info.classification == "restricted" and info.tags == {"classification": "restricted", "owner": "ops"}
    assert info.encryption == "AES256"
    assert info.metadata["team"] == "red" and info.sha256 == hashlib.sha256(b"top secret").hexdigest()
    assert info.versioning == "Off"


def test_a_missing_object_is_a_clear_error(make_user, actor_of, conn, filled):
    from apps.storage.client import StorageError

    with pytest.raises(StorageError, match=r"There is no object 'nope\.txt'"):
        invoke("storage.head", actor_of(make_user("viewer")), {"connection": conn.name, "bucket": filled, "key": "nope.txt"})
    with pytest.raises(StorageError, match="does not exist"):
        invoke("storage.list", actor_of(make_user("viewer")), {"connection": conn.name, "bucket": "no-such-bucket-here"})


def test_presigned_url_works_with_a_plain_http_client_and_its_expiry_is_capped(make_user, actor_of, conn, filled, settings):
    settings.STORAGE_PRESIGN_MAX_SECONDS = 600
    actor = actor_of(make_user("operator"))
    params = {"connection": conn.name, "bucket": filled, "key": "docs/readme.md", "expires_seconds": 7 * 86400}
    result = invoke("storage.download", actor, params).result
    assert result.mode == "presigned" and result.expires_seconds == 600
    query = parse_qs(urlparse(result.url).query)
    assert query["X-Amz-Expires"] == ["600"] and "X-Amz-Signature" in query
    with urllib.request.urlopen(result.url, timeout=10) as response:
        assert response.read() == b"# hello\n"
    event = AuditEvent.objects.filter(operation="storage.download").latest("seq")
    assert event.outcome == "ok" and event.params["key"] == "docs/readme.md" and event.params["expires_seconds"] == 7 * 86400


def test_auditors_and_viewers_cannot_download(make_user, actor_of, conn, filled, client):
    params = {"connection": conn.name, "bucket": filled, "key": "docs/readme.md"}
    for role in ("auditor", "viewer"):
        with pytest.raises(PermissionDenied, match=r"storage\.download_objects"):
            invoke("storage.download", actor_of(make_user(role)), params)
        client.force_login(make_user(role))
        assert client.get("/storage/download/?" + urlencode(params)).status_code == 403
    assert AuditEvent.objects.filter(operation="storage.download", outcome="denied").count() == 2
    assert AuditEvent.objects.filter(operation="storage.fetch", outcome="denied").count() == 2


@pytest.mark.parametrize("key", ODD_KEYS)
def test_odd_keys_round_trip_and_download_under_a_safe_name(client, make_user, conn, filled, key):
    client.force_login(make_user("operator"))
    page = client.get(f"/storage/c/{conn.name}/b/{filled}/object/?" + urlencode({"key": key}))
    assert page.status_code == 200
    assert key in page.content.decode()
    response = client.get("/storage/download/?" + urlencode({"connection": conn.name, "bucket": filled, "key": key}))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == key.encode()
    # Only the last segment names the file: never a path, never `..`.
    name = key.rsplit("/", 1)[-1]
    assert name in ("ünïcødé €.txt", "passwd", "c.txt")
    assert response["Content-Disposition"] == content_disposition_header(True, name)
    assert AuditEvent.objects.filter(operation="storage.fetch").latest("seq").params["key"] == key


def test_browse_page_lists_folders_and_objects(client, make_user, conn, filled):
    client.force_login(make_user("viewer"))
    page = client.get(f"/storage/c/{conn.name}/b/{filled}/?prefix=docs/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "docs/img/" in html and "readme.md" in html
    assert f"/storage/c/{conn.name}/b/{filled}/object/?key=docs/readme.md" in html
    assert "Upload" not in html  # a viewer may not write
    empty = client.get(f"/storage/c/{conn.name}/b/{filled}/?prefix=nothing-here/")
    assert "Nothing under" in empty.content.decode()


def test_browse_page_pages_with_the_token(client, make_user, conn, s3, bucket, settings):
    for i in range(105):
        s3.put_object(Bucket=bucket, Key=f"k{i:03d}", Body=b"")
    client.force_login(make_user("viewer"))
    first = client.get(f"/storage/c/{conn.name}/b/{bucket}/").content.decode()
    assert "k099" in first and "k100" not in first
    next_href = re.search(r'id="next-page" href="\?([^"]+)"', first).group(1).replace("&amp;", "&")
    second = client.get(f"/storage/c/{conn.name}/b/{bucket}/?{next_href}").content.decode()
    assert "k100" in second and "k104" in second and "k099" not in second
    assert 'id="next-page"' not in second


def test_object_page_shows_classification_and_hands_out_a_presigned_url(client, make_user, conn, filled):
    client.force_login(make_user("operator"))
    url = f"/storage/c/{conn.name}/b/{filled}/object/?" + urlencode({"key": "secret/plan.txt"})
    html = client.get(url).content.decode()
    assert 'id="classification">restricted<' in html and 'id="encryption">AES256' in html
    assert "waits for an approver" in html
    answer = client.post(url, {"expires_seconds": "60"}).content.decode()
    presigned = re.search(r'id="presigned-url">([^<]+)<', answer).group(1).replace("&amp;", "&")
    with urllib.request.urlopen(presigned, timeout=10) as response:
        assert response.read() == b"top secret"
