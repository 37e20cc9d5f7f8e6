"""Where the advisories come from and how fresh they are.

Out of the box: the snapshot shipped in apps/security/advisories (the PyPA
advisory database in OSV format, plus a few GHSA records), loaded by
`manage.py import_osv --shipped` (bin/console runs it) unless a sync already
brought newer data. Then a scheduled sync downloads OSV's per-ecosystem export
`<base>/<ecosystem>/all.zip` with If-None-Match / If-Modified-Since: a 304
only marks the data fresh; a new archive is checked whole (CRCs) and swapped
in one transaction (osv.replace_source), so a corrupt or partial download
leaves the previous data in place and says why on the feed.
"""

from __future__ import annotations

import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import httpx
from django.conf import settings

from apps.core.errors import OpsError
from apps.core.resilience import breaker_for, call_through

from ..errors import ScanError
from ..models import AdvisoryFeed, AffectedPackage
from . import osv

SHIPPED = Path(__file__).resolve().parents[1] / "advisories"
CHUNK = 1 << 20


@dataclass
class FeedState:
    ecosystem: str
    origin: str
    records: int
    fresh_at: datetime | None
    age_days: float | None
    stale: bool
    error: str


def state(feed: AdvisoryFeed, now: datetime) -> FeedState:
    age = (now - feed.fresh_at).total_seconds() / 86400 if feed.fresh_at else None
    stale = age is None or age > settings.SECURITY_ADVISORY_STALE_DAYS
    return FeedState(feed.ecosystem, feed.origin, feed.records, feed.fresh_at, age, stale, feed.error)


def states(now: datetime) -> list[FeedState]:
    return [state(feed, now) for feed in AdvisoryFeed.objects.all()]


def audit_notes(ecosystems: set[str], now: datetime) -> list[str]:
    """What an audit's verdict rests on, per ecosystem, for its result: no data at all, or data this old or stale.

    A clean audit against two-year-old advisories is not a clean bill of health: the result says so."""
    feeds = {s.ecosystem: s for s in states(now)}
    notes = []
    for ecosystem in sorted(ecosystems):
        s = feeds.get(ecosystem)
        if not AffectedPackage.objects.filter(ecosystem=ecosystem).exists():
            notes.append(f"No {ecosystem} advisory is loaded: its packages were checked against nothing (security.sync_advisories).")
        elif s is None or s.fresh_at is None:
            notes.append(f"The {ecosystem} advisories were imported by hand: how current they are is not known.")
        else:
            origin = "the shipped snapshot" if s.origin == AdvisoryFeed.SNAPSHOT else "OSV"
            note = f"{ecosystem} advisories: {s.records} from {origin}, current as of {s.fresh_at:%Y-%m-%d}"
            if s.stale:
                note += f" ({s.age_days:.0f} days old: STALE, vulnerabilities published since are not known; security.sync_advisories)"
            notes.append(note + (f"; the last sync failed: {s.error}" if s.error else "") + ".")
    return notes


# --- the shipped snapshot --------------------------------------------------------------


def load_shipped(now: datetime) -> dict[str, int]:
    """Load the shipped records of each ecosystem that has no data at least as new (idempotent: a second run does nothing)."""
    by_source: dict[str, list[dict]] = {}
    for record in osv.read_records(SHIPPED):
        by_source.setdefault(osv.source_of(record), []).append(record)
    loaded = {}
    for source, records in sorted(by_source.items()):
        newest = max((osv.parse_time(r.get("modified")) for r in records if r.get("modified")), default=None)
        feed = AdvisoryFeed.objects.filter(ecosystem=source).first()
        if feed is not None and feed.data_as_of and newest and feed.data_as_of >= newest:
            continue
        stats = osv.replace_source(source, records)
        AdvisoryFeed.objects.update_or_create(
            ecosystem=source,
            defaults={
                "origin": AdvisoryFeed.SNAPSHOT,
                "url": "",
                "etag": "",
                "last_modified": "",
                "records": stats.records,
                "data_as_of": stats.newest,
                "fresh_at": stats.newest,  # a snapshot is as fresh as its newest record, not as the day it was loaded
                "checked_at": now,
                "error": "",
            },
        )
        loaded[source] = stats.records
    return loaded


# --- the sync from OSV's exports ---------------------------------------------------------


@dataclass
class SyncResult:
    ecosystem: str
    status: str  # updated | not-modified | failed
    records: int
    detail: str


def export_url(ecosystem: str) -> str:
    return f"{settings.SECURITY_OSV_BASE_URL}/{quote(ecosystem)}/all.zip"


def _download(client: httpx.Client, url: str, headers: dict, into) -> httpx.Response:
    limit = settings.SECURITY_OSV_MAX_MB << 20
    into.seek(0)
    into.truncate()  # a retried download starts over
    with client.stream("GET", url, headers=headers) as response:
        if response.status_code in (200, 304):
            size = 0
            for chunk in response.iter_bytes(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ScanError(f"{url} is larger than {settings.SECURITY_OSV_MAX_MB} MB (SECURITY_OSV_MAX_MB): not imported.")
                into.write(chunk)
        elif response.status_code >= 500:
            response.raise_for_status()  # counts against the breaker
        return response


def sync(ecosystem: str, client: httpx.Client, now: datetime) -> SyncResult:
    """Bring one ecosystem's advisories up to date from its OSV export; on any failure keep the data there is."""
    feed, _ = AdvisoryFeed.objects.get_or_create(ecosystem=ecosystem)
    url = export_url(ecosystem)
    headers = {}
    if feed.origin == AdvisoryFeed.OSV and feed.url == url:
        if feed.etag:
            headers["If-None-Match"] = feed.etag
        if feed.last_modified:
            headers["If-Modified-Since"] = feed.last_modified
    feed.checked_at = now
    with tempfile.TemporaryFile(prefix="osv-export-") as archive:
        try:
            response = call_through(
                breaker_for("security:osv"),
                lambda: _download(client, url, headers, archive),
                errors=(httpx.HTTPError,),
                retry=True,
                describe="the OSV advisory export",
            )
            if response.status_code == 304:
                feed.fresh_at, feed.error = now, ""
                feed.save()
                return SyncResult(ecosystem, "not-modified", feed.records, "not modified since the last sync")
            if response.status_code != 200:
                raise ScanError(f"{url} answered HTTP {response.status_code}.")
            archive.seek(0)
            with zipfile.ZipFile(archive) as zf:
                broken = zf.testzip()
                if broken:
                    raise ScanError(f"{url}: {broken} is corrupt in the archive.")
                stats = osv.replace_source(ecosystem, osv.records_in_zip(zf))
        except (OpsError, zipfile.BadZipFile, ValueError, OSError) as exc:  # OpsError: also the peer unreachable
            return _failed(feed, getattr(exc, "message", f"{type(exc).__name__}: {exc}"))
    feed.origin, feed.url, feed.error = AdvisoryFeed.OSV, url, ""
    feed.etag = response.headers.get("etag", "")[:200]
    feed.last_modified = response.headers.get("last-modified", "")[:100]
    feed.records, feed.data_as_of, feed.fresh_at = stats.records, stats.newest, now
    feed.save()
    return SyncResult(ecosystem, "updated", stats.records, f"{stats.records} advisories from {url}")


def _failed(feed: AdvisoryFeed, reason: str) -> SyncResult:
    feed.error = f"{reason[:500]} (the {feed.records} advisories from before are kept)"
    feed.save()
    return SyncResult(feed.ecosystem, "failed", feed.records, feed.error)


def client() -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(30.0, read=120.0), follow_redirects=True)
