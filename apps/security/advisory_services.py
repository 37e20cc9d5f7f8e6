"""Operations on the advisory data: its freshness, and the sync from OSV's exports."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from pydantic import BaseModel, Field

from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from . import exceptions
from .deps import feeds, osv
from .errors import ScanError
from .models import AdvisoryException, Finding


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


# OSV ecosystem names: "PyPI", "npm", "crates.io", "Debian:12", ...
Ecosystem = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9.:_ -]*$")]


class SyncAdvisoriesInput(BaseModel):
    ecosystems: list[Ecosystem] = Field(
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
    """/health/: one row per ecosystem, a warning when its data is stale, its last sync failed, or there is none."""
    states = feeds.states(timezone.now())
    missing = sorted(set(settings.SECURITY_OSV_ECOSYSTEMS) - {s.ecosystem for s in states})
    none = "no advisory loaded: manage.py import_osv --shipped, or security.sync_advisories"
    rows = [(f"advisories:{e}", "warning", none) for e in missing]
    for s in states:
        age = f"{s.age_days:.0f} days old" if s.age_days is not None else "age unknown"
        detail = f"{s.records} advisories ({s.origin}), {age}" + (f"; last sync failed: {s.error}" if s.error else "")
        rows.append((f"advisories:{s.ecosystem}", "warning" if s.stale or s.error else "ok", detail))
    return rows


# --- scoped exceptions -------------------------------------------------------------------

MAX_EXCEPTION_DAYS = 366


class AddExceptionInput(BaseModel):
    vulnerability: str = Field(max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$", description="Any id of it: CVE, GHSA, PYSEC...")
    package: str = Field(max_length=200, pattern=r"^[@A-Za-z0-9][A-Za-z0-9._/\-]*$", description="The package it is in.")
    ecosystem: Literal["PyPI", "npm"] = "PyPI"
    versions: str = Field(
        "",
        max_length=200,
        description="Versions covered: comparisons like '==2.30.0' or '>=2.0,<2.31', alternatives joined by '||'. "
        "Empty = exactly the versions open findings show now (a different version later is a finding again).",
    )
    path: str = Field("", max_length=500, description="Glob of lockfile paths it covers, e.g. 'services/api/*'; empty = every lockfile.")
    reason: str = Field(min_length=10, max_length=2000, description="Why the risk is accepted (shown with the finding and in SARIF).")
    expires_at: datetime = Field(description=f"When it ends (at most {MAX_EXCEPTION_DAYS} days ahead); the findings open again then.")


class ExceptionOut(BaseModel):
    id: int
    vulnerability: str
    ids: list[str]
    ecosystem: str
    package: str
    versions: str
    path: str
    reason: str
    severity: str
    expires_at: datetime
    created_by: str
    accepted_findings: int = 0

    @classmethod
    def of(cls, e: AdvisoryException, accepted: int = 0) -> ExceptionOut:
        return cls(
            id=e.pk, vulnerability=e.vulnerability, ids=e.aliases, ecosystem=e.ecosystem, package=e.package, versions=e.versions,
            path=e.path, reason=e.reason, severity=e.severity, expires_at=e.expires_at,
            created_by=e.created_by.username if e.created_by else "", accepted_findings=accepted,
        )  # fmt: skip


def plan_exception(ctx: Context | None, params: AddExceptionInput) -> dict:
    """What the exception will be, resolved against the advisory data and the open findings (a pure read)."""
    now = timezone.now()
    expires = params.expires_at if timezone.is_aware(params.expires_at) else timezone.make_aware(params.expires_at)
    if expires <= now or expires > now + timedelta(days=MAX_EXCEPTION_DAYS):
        raise ScanError(f"expires_at must be in the future and at most {MAX_EXCEPTION_DAYS} days ahead.")
    vuln = exceptions.resolve(params.ecosystem, params.package, params.vulnerability)
    if vuln is None:
        raise ScanError(f"No advisory names {params.vulnerability} for the {params.ecosystem} package {params.package}.")
    versions = params.versions.strip()
    if versions:
        exceptions.parse_versions(params.ecosystem, versions)
    else:
        found = sorted(
            {
                f.version
                for f in Finding.objects.filter(kind="dependencies", status__in=Finding.ACTIVE, package__iexact=params.package)
                if {f.rule, *f.aliases} & set(vuln.ids)
            }
        )
        if not found:
            raise ScanError("No open finding shows this vulnerability in that package: give the versions the exception covers.")
        versions = " || ".join(f"=={v}" for v in found)
    return {
        "summary": f"Accept {vuln.severity} {params.vulnerability.upper()} in {params.package} {versions} until {expires:%Y-%m-%d}.",
        "vulnerability": params.vulnerability.upper(),
        "ids": vuln.ids,
        "severity": vuln.severity,
        "ecosystem": params.ecosystem,
        "package": osv.normalise_name(params.ecosystem, params.package),
        "versions": versions,
        "path": params.path,
        "reason": params.reason,
        "expires_at": expires.isoformat(),
    }


def critical_scope(params: AddExceptionInput) -> str | None:
    """Accepting a critical vulnerability needs a second person's approval; others do not."""
    vuln = exceptions.resolve(params.ecosystem, params.package, params.vulnerability)
    return "severity:critical" if vuln is not None and vuln.severity == "critical" else None


@operation(
    "security.add_exception",
    risk=Risk.RISKY,
    permission="security.triage_findings",
    approval_scope=critical_scope,
    guard=True,  # a critical one lowers the gate: someone else approves it whatever the policy rows say
    planner=plan_exception,
    target=lambda p: f"{p.vulnerability} in {p.package}",
)
def add_exception(ctx: Context, params: AddExceptionInput) -> ExceptionOut:
    """Accept one vulnerability in one package until a date: its findings (those versions, those lockfile paths) become
    accepted risks; another version, path or vulnerability is still a finding, and they open again when it expires.
    A critical vulnerability needs approval. Exported to SARIF as a suppression with its reason."""
    plan = plan_exception(ctx, params)
    with transaction.atomic():
        exc = AdvisoryException.objects.create(
            vulnerability=plan["vulnerability"],
            aliases=plan["ids"],
            ecosystem=plan["ecosystem"],
            package=plan["package"],
            versions=plan["versions"],
            path=plan["path"],
            reason=plan["reason"],
            severity=plan["severity"],
            expires_at=datetime.fromisoformat(plan["expires_at"]),
            created_by=ctx.user,
        )
        accepted = exceptions.accept_findings(exc, timezone.now())
    ctx.log(f"exception #{exc.pk}: {accepted} finding(s) accepted until {exc.expires_at:%Y-%m-%d}")
    return ExceptionOut.of(exc, accepted)


class ListExceptionsInput(BaseModel):
    include_expired: bool = False


class ListExceptionsOutput(BaseModel):
    exceptions: list[ExceptionOut]


@operation("security.exceptions", risk=Risk.READ)
def list_exceptions(ctx: Context, params: ListExceptionsInput) -> ListExceptionsOutput:
    """The scoped exceptions to the dependency audit (current ones; include_expired for all), newest first."""
    rows = AdvisoryException.objects.select_related("created_by")
    if not params.include_expired:
        rows = rows.filter(expires_at__gt=timezone.now())
    return ListExceptionsOutput(exceptions=[ExceptionOut.of(e) for e in rows[:500]])
