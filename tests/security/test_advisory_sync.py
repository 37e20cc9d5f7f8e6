"""Advisory data out of the box and kept fresh: the shipped PyPA snapshot, the
scheduled sync from a local HTTP server that serves OSV's export layout
(`<ecosystem>/all.zip`, ETag / If-Modified-Since, 304), a corrupt archive that
leaves the old data in place, and the data's age on /health/."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import zipfile
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core import gateway
from apps.core.models import Job
from apps.security import advisory_services, tasks
from apps.security.deps import feeds
from apps.security.models import Advisory, AdvisoryFeed


def record(vid, package, introduced, fixed, ecosystem="PyPI", modified="2026-11-30T10:00:00Z", **extra):
    return {
        "id": vid,
        "modified": modified,
        "summary": f"{package} advisory {vid}",
        "affected": [
            {
                "package": {"ecosystem": ecosystem, "name": package},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": introduced}, {"fixed": fixed}]}],
            }
        ],
        **extra,
    }


def export(*records, compression=zipfile.ZIP_DEFLATED) -> bytes:
    """An archive in the layout of OSV's all.zip: one <id>.json per record at the root."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for r in records:
            zf.writestr(f"{r['id']}.json", json.dumps(r))
    return buf.getvalue()


class OsvExports:
    """A local server in the layout of OSV's bucket: GET /<ecosystem>/all.zip, conditional on ETag and Last-Modified."""

    def __init__(self):
        self.files: dict[str, tuple[bytes, str, str]] = {}  # path -> (body, etag, last-modified)
        self.requests: list[tuple[str, dict]] = []
        exports = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                exports.requests.append((self.path, dict(self.headers)))
                if self.path not in exports.files:
                    self.send_error(404)
                    return
                body, etag, modified = exports.files[self.path]
                if self.headers.get("If-None-Match") == etag or (not etag and self.headers.get("If-Modified-Since") == modified):
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                if etag:
                    self.send_header("ETag", etag)
                self.send_header("Last-Modified", modified)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/osv"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, ecosystem, body, etag='"v1"', modified="Mon, 30 Nov 2026 10:00:00 GMT"):
        self.files[f"/osv/{ecosystem}/all.zip"] = (body, etag, modified)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def osv_exports(settings):
    exports = OsvExports()
    settings.SECURITY_OSV_BASE_URL = exports.url
    settings.SECURITY_OSV_ECOSYSTEMS = ["PyPI", "npm"]
    yield exports
    exports.close()


def sync(actor, **params):
    outcome = gateway.invoke("security.sync_advisories", actor, params, "web")
    assert outcome.status == "queued"
    gateway.run_job(str(outcome.job.pk))
    outcome.job.refresh_from_db()
    assert outcome.job.status == "succeeded", outcome.job.error
    return {r["ecosystem"]: r for r in outcome.job.result["results"]}


def test_the_shipped_snapshot_loads_once_and_says_how_old_it_is(db):
    call_command("import_osv", "--shipped")
    pypi = AdvisoryFeed.objects.get(ecosystem="PyPI")
    assert pypi.origin == "snapshot" and pypi.records > 2600  # the PyPA database, 2024-10-10
    assert pypi.fresh_at.date().isoformat() == "2024-10-10"
    assert Advisory.objects.filter(source="PyPI", id__startswith="PYSEC-").count() > 2600
    assert AdvisoryFeed.objects.get(ecosystem="npm").records == 2  # the GHSA records shipped beside it
    before = Advisory.objects.count()
    call_command("import_osv", "--shipped")  # idempotent
    assert Advisory.objects.count() == before
    state = feeds.state(pypi, timezone.now())
    assert state.stale and state.age_days > 7


def test_sync_downloads_then_asks_conditionally_and_a_304_keeps_the_data(db, make_user, actor_of, osv_exports):
    call_command("import_osv", "--shipped")
    osv_exports.serve(
        "PyPI", export(record("PYSEC-2026-1", "requests", "2.0", "2.32.4"), record("GHSA-aaaa-bbbb-cccc", "django", "5.0", "5.2.8"))
    )
    osv_exports.serve("npm", export(record("GHSA-dddd-eeee-ffff", "lodash", "0", "4.17.21", ecosystem="npm")), etag="")
    actor = actor_of(make_user("operator"))

    first = sync(actor)
    assert (first["PyPI"]["status"], first["PyPI"]["records"]) == ("updated", 2)
    assert (first["npm"]["status"], first["npm"]["records"]) == ("updated", 1)
    assert set(Advisory.objects.filter(source="PyPI").values_list("id", flat=True)) == {"PYSEC-2026-1", "GHSA-aaaa-bbbb-cccc"}  # swapped
    feed = AdvisoryFeed.objects.get(ecosystem="PyPI")
    assert (feed.origin, feed.etag, feed.error) == ("osv", '"v1"', "")
    assert "If-None-Match" not in osv_exports.requests[0][1]  # the snapshot had no ETag to send

    AdvisoryFeed.objects.filter(pk=feed.pk).update(fresh_at=timezone.now() - timedelta(days=3))
    second = sync(actor)
    assert second["PyPI"]["status"] == "not-modified" and second["npm"]["status"] == "not-modified"
    sent = {path: headers for path, headers in osv_exports.requests[-2:]}
    assert sent["/osv/PyPI/all.zip"]["If-None-Match"] == '"v1"'
    assert sent["/osv/npm/all.zip"]["If-Modified-Since"] == "Mon, 30 Nov 2026 10:00:00 GMT"  # no ETag: the date
    assert Advisory.objects.filter(source="PyPI").count() == 2
    assert (timezone.now() - AdvisoryFeed.objects.get(ecosystem="PyPI").fresh_at) < timedelta(hours=1)  # a 304 is fresh news
    assert AuditEvent.objects.filter(operation="security.sync_advisories", outcome="ok").count() >= 2


def _not_json() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("PYSEC-2026-9.json", "{not json")
    return buf.getvalue()


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda good: good[: len(good) // 2], id="truncated-archive"),
        pytest.param(lambda good: good.replace(b"requests", b"requestz"), id="crc-mismatch"),
        pytest.param(lambda good: _not_json(), id="record-not-json"),
        pytest.param(lambda good: export(), id="empty-export"),
    ],
)
def test_a_corrupt_export_keeps_the_old_data_and_says_why(db, make_user, actor_of, osv_exports, corrupt):
    good = export(record("PYSEC-2026-1", "requests", "2.0", "2.32.4"), compression=zipfile.ZIP_STORED)
    osv_exports.serve("PyPI", good)
    actor = actor_of(make_user("operator"))
    sync(actor, ecosystems=["PyPI"])
    osv_exports.serve("PyPI", corrupt(good), etag='"v2"')
    result = sync(actor, ecosystems=["PyPI"])["PyPI"]
    assert result["status"] == "failed" and "kept" in result["detail"]
    assert list(Advisory.objects.filter(source="PyPI").values_list("id", flat=True)) == ["PYSEC-2026-1"]
    feed = AdvisoryFeed.objects.get(ecosystem="PyPI")
    assert feed.etag == '"v1"' and "kept" in feed.error  # the next sync asks again for what it has
    row = {name: (status, detail) for name, status, detail in advisory_services.health_rows()}["advisories:PyPI"]
    assert row[0] == "warning" and "last sync failed" in row[1]  # a failed sync is a warning on /health/, fresh data or not


def test_an_export_above_the_size_cap_is_not_imported(db, make_user, actor_of, osv_exports, settings):
    actor = actor_of(make_user("operator"))
    osv_exports.serve("PyPI", export(record("PYSEC-2026-1", "requests", "2.0", "2.32.4")))
    sync(actor, ecosystems=["PyPI"])
    settings.SECURITY_OSV_MAX_MB = 0
    osv_exports.serve("PyPI", export(record("PYSEC-2026-2", "django", "5.0", "5.2.8")), etag='"v2"')
    result = sync(actor, ecosystems=["PyPI"])["PyPI"]
    assert result["status"] == "failed" and "SECURITY_OSV_MAX_MB" in result["detail"]
    assert list(Advisory.objects.filter(source="PyPI").values_list("id", flat=True)) == ["PYSEC-2026-1"]


def test_an_unreachable_export_is_a_failed_sync_not_lost_data(db, make_user, actor_of, osv_exports, settings):
    call_command("import_osv", "--shipped")
    osv_exports.close()
    result = sync(actor_of(make_user("operator")), ecosystems=["PyPI"])["PyPI"]
    assert result["status"] == "failed" and result["records"] > 2600
    assert Advisory.objects.filter(source="PyPI").count() > 2600


def test_the_data_age_shows_on_health_and_the_security_page(db, client, make_user, osv_exports):
    rows = {name: (status, detail) for name, status, detail in advisory_services.health_rows()}
    assert rows == {f"advisories:{e}": ("warning", rows[f"advisories:{e}"][1]) for e in ("PyPI", "npm")}  # nothing loaded yet
    assert "no advisory loaded" in rows["advisories:PyPI"][1]
    call_command("import_osv", "--shipped")
    user = make_user("operator")
    client.force_login(user)
    health = client.get(reverse("core:health")).content.decode()
    assert "advisories:PyPI" in health and "warning" in health and "days old" in health
    osv_exports.serve("PyPI", export(record("PYSEC-2026-1", "requests", "2.0", "2.32.4")))
    osv_exports.serve("npm", export(record("GHSA-dddd-eeee-ffff", "lodash", "0", "4.17.21", ecosystem="npm")))
    from apps.accounts.actors import Actor

    sync(Actor.for_user(user))
    out = gateway.invoke("core.health", Actor.for_user(user), {"include_workers": False}, "web").result
    assert {c.name: c.status for c in out.checks} == {"advisories:PyPI": "ok", "advisories:npm": "ok"}
    AdvisoryFeed.objects.filter(ecosystem="npm").update(fresh_at=timezone.now() - timedelta(days=8))
    out = gateway.invoke("core.health", Actor.for_user(user), {"include_workers": False}, "web").result
    assert {c.name: c.status for c in out.checks}["advisories:npm"] == "warning" and out.status == "degraded"
    page = client.get(reverse("security:dashboard")).content.decode()
    assert "Advisory data" in page and "PyPI" in page and "stale" in page


def _beat_entry(**env) -> str:
    """The beat entry of the sync as the settings build it from this environment (a fresh interpreter)."""
    code = "from opsconsole import settings; print(settings.CELERY_BEAT_SCHEDULE.get('security-sync-advisories'))"
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, check=True, capture_output=True, text=True).stdout


def test_the_sync_is_scheduled_daily_by_celery_beat_and_configurable(settings):
    from opsconsole.settings import CELERY_BEAT_SCHEDULE

    entry = CELERY_BEAT_SCHEDULE["security-sync-advisories"]
    assert entry["task"] == "apps.security.tasks.sync_advisories" and entry["schedule"] == timedelta(hours=24)
    assert "datetime.timedelta(seconds=21600)" in _beat_entry(SECURITY_OSV_SYNC_HOURS="6")
    assert _beat_entry(SECURITY_OSV_SYNC_HOURS="0").strip() == "None"  # 0 = no scheduled sync


def test_the_scheduled_task_runs_the_sync_as_the_console(db, osv_exports):
    osv_exports.serve("PyPI", export(record("PYSEC-2026-1", "requests", "2.0", "2.32.4")))
    osv_exports.serve("npm", export(record("GHSA-dddd-eeee-ffff", "lodash", "0", "4.17.21", ecosystem="npm")))
    tasks.sync_advisories()  # what beat calls
    job = Job.objects.get(operation="security.sync_advisories")
    assert job.requested_by is None and job.channel == "system"
    gateway.run_job(str(job.pk))
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert {r["ecosystem"]: r["status"] for r in job.result["results"]} == {"PyPI": "updated", "npm": "updated"}
    assert AuditEvent.objects.filter(operation="security.sync_advisories", actor="system", outcome="ok").exists()
