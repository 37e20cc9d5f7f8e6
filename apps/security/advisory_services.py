"""Operations on the advisory data: its freshness, and the sync from OSV's exports."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.utils import timezone
from pydantic import BaseModel, Field

from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from .deps import feeds
from .errors import ScanError


class FeedOut(BaseModel):
    ecosystem: str
    origin: str = Field(description="snapshot (shipped with the console) or osv (synced from OSV's export).")
    records: int
    fresh_at: datetime | None = Field(description="When the data was last known current.")
    age_days: float | None
    stale: bool = Field(description=f"Older than SECURITY_ADVISORY_STALE_DAYS ({settings.SECURITY_ADVISORY_STALE_DAYS}).")
    error: str = Field(description="Why the last sync failed; the data before it is kept.")

    @classmethod
    def of(cls, s: feeds.FeedState) -> FeedOut:
        age = round(s.age_days, 1) if s.age_days is not None else None
        return cls(
            ecosystem=s.ecosystem, origin=s.origin, records=s.records, fresh_at=s.fresh_at, age_days=age, stale=s.stale, error=s.error
        )


class AdvisoryStatusInput(BaseModel):
    pass


class AdvisoryStatusOutput(BaseModel):
    feeds: list[FeedOut]


@operation("security.advisory_status", risk=Risk.READ)
def advisory_status(ctx: Context, params: AdvisoryStatusInput) -> AdvisoryStatusOutput:
    """How old the advisory data of each ecosystem is, where it came from, and why its last sync failed, if it did."""
    return AdvisoryStatusOutput(feeds=[FeedOut.of(s) for s in feeds.states(timezone.now())])


class SyncAdvisoriesInput(BaseModel):
    ecosystems: list[str] = Field(
        default_factory=list, max_length=20, description="OSV ecosystem names (PyPI, npm, ...); empty = SECURITY_OSV_ECOSYSTEMS."
    )


class SyncResultOut(BaseModel):
    ecosystem: str
    status: str = Field(description="updated, not-modified or failed (the previous data is kept).")
    records: int
    detail: str


class SyncAdvisoriesOutput(BaseModel):
    results: list[SyncResultOut]


@operation("security.sync_advisories", risk=Risk.WRITE, long=True, target=lambda p: ",".join(p.ecosystems) or "configured ecosystems")
def sync_advisories(ctx: Context, params: SyncAdvisoriesInput) -> SyncAdvisoriesOutput:
    """Download OSV's advisory export (<SECURITY_OSV_BASE_URL>/<ecosystem>/all.zip) of each ecosystem and swap it in.

    Conditional (ETag / If-Modified-Since): an unchanged export is not downloaded again. A corrupt or failed download
    keeps the data there was and says why. Scheduled daily by Celery beat (SECURITY_OSV_SYNC_HOURS). Runs as a job."""
    ecosystems = params.ecosystems or list(settings.SECURITY_OSV_ECOSYSTEMS)
    if not ecosystems:
        raise ScanError("No ecosystem to sync: give ecosystems or set SECURITY_OSV_ECOSYSTEMS.")
    results = []
    with feeds.client() as client:
        for i, ecosystem in enumerate(ecosystems):
            ctx.progress(100 * i / len(ecosystems), f"syncing {ecosystem}")
            result = feeds.sync(ecosystem, client, timezone.now())
            ctx.log(f"{ecosystem}: {result.status}: {result.detail}")
            results.append(SyncResultOut(**vars(result)))
    return SyncAdvisoriesOutput(results=results)


def health_rows() -> list[tuple[str, str, str]]:
    """/health/: one row per ecosystem, a warning when its data is stale or its last sync failed."""
    rows = []
    for s in feeds.states(timezone.now()):
        age = f"{s.age_days:.0f} days old" if s.age_days is not None else "age unknown"
        detail = f"{s.records} advisories ({s.origin}), {age}" + (f"; last sync failed: {s.error}" if s.error else "")
        rows.append((f"advisories:{s.ecosystem}", "warning" if s.stale or s.error else "ok", detail))
    return rows
