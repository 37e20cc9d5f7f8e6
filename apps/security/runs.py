"""Running a scan: a Scan row, live progress, the findings recorded at the end
(or the scan marked failed), and the summary every scan operation returns."""

from __future__ import annotations

import tempfile
import uuid
from collections import Counter
from pathlib import Path
from uuid import UUID

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from pydantic import BaseModel, Field

from apps.core.jobs import Context
from apps.core.live import publish_template

from . import findings, scanning
from .models import Finding, Scan
from .sources import Tree


class ScanOutput(BaseModel):
    scan_id: UUID
    target: str
    findings: int = Field(description="Findings seen in this scan.")
    new: int
    fixed: int = Field(description="Findings of this target not seen any more.")
    reopened: int
    by_severity: dict[str, int]
    files: int
    bytes: int
    skipped: dict[str, int] = Field(description="Files not read, by reason (binary, lockfile, too large, allow-listed...).")
    notes: list[str]
    unread_lockfiles: list[str] = Field(default_factory=list, description="Dependency audits: every lockfile found but not read, and why.")
    gate: str = Field(
        "pass", description="fail when an open finding of this scan is of a SECURITY_GATE_SEVERITIES severity (default critical)."
    )
    gate_failures: list[str] = Field(default_factory=list, description="What fails the gate (a secret verified live always does).")


def _start(ctx: Context, kind: str, target: str) -> Scan:
    scan = Scan.objects.create(id=ctx.job.pk if ctx.job else uuid.uuid4(), job=ctx.job, kind=kind, target=target, requested_by=ctx.user)
    _publish(scan)
    return scan


def _publish(scan: Scan) -> None:
    publish_template("security.scans", "security/_scan_row_live.html", {"scan": scan, "job": scan.job})


def _reporter(ctx: Context, scan: Scan) -> scanning.Progress:
    def report(pct: float, message: str) -> None:
        ctx.progress(pct, message)
        _publish(scan)

    return scanning.Progress(report)


def run_scan(ctx: Context, kind: str, target_of, work, *, narrowed: bool = False) -> ScanOutput:
    """Create the scan, run `work(tree, progress)`, record findings; a failure marks the scan failed."""
    with tempfile.TemporaryDirectory(prefix="opsconsole-scan-") as scratch:
        tree: Tree = target_of(Path(scratch))
        scan = _start(ctx, kind, tree.target[:300])  # the column's width; long prefixes and paths share it
        try:
            ctx.log(f"{kind} scan of {tree.target}")
            outcome: scanning.Outcome = work(tree, _reporter(ctx, scan))
            now = timezone.now()
            counts = findings.record(scan, outcome.observations, now, narrowed=narrowed)
        except Exception as exc:
            scan.status, scan.finished_at = Scan.FAILED, timezone.now()
            scan.error = getattr(exc, "message", f"internal error: {type(exc).__name__}")
            scan.save(update_fields=["status", "finished_at", "error"])
            _publish(scan)
            raise
    counted = Q(last_scan=scan)
    if narrowed:  # what the caller's own allow-lists hid still fails the gate when it is guarded
        counted |= Q(target=scan.target, kind=scan.kind) & findings.GUARDED
    failing = Finding.objects.filter(counted, status__in=Finding.ACTIVE, severity__in=settings.SECURITY_GATE_SEVERITIES)
    gate_failures = [
        f"{f.severity} {f.rule} at {f.location}" + (" (verified live)" if f.verification == "live" else "") for f in failing[:50]
    ]
    severities = Counter(o.severity for o in {findings.fingerprint(scan.target, o): o for o in outcome.observations}.values())
    notes = tree.notes + outcome.notes
    scan.stats = {
        **counts,
        "by_severity": dict(severities),
        "files": outcome.files,
        "bytes": outcome.bytes,
        "skipped": outcome.skipped,
        "notes": notes[:50],
        "unread_lockfiles": outcome.unread,
        "gate": "fail" if gate_failures else "pass",
    }
    scan.status, scan.finished_at = Scan.DONE, timezone.now()
    scan.save(update_fields=["stats", "status", "finished_at"])
    _publish(scan)
    for note in notes[:20]:
        ctx.log(note)
    ctx.log(f"{counts['total']} findings: {counts['new']} new, {counts['fixed']} fixed, {counts['reopened']} reopened")
    return ScanOutput(
        scan_id=scan.pk,
        target=scan.target,
        findings=counts["total"],
        new=counts["new"],
        fixed=counts["fixed"],
        reopened=counts["reopened"],
        by_severity=dict(severities),
        files=outcome.files,
        bytes=outcome.bytes,
        skipped=outcome.skipped,
        notes=notes[:50],
        unread_lockfiles=outcome.unread,
        gate="fail" if gate_failures else "pass",
        gate_failures=gate_failures,
    )
