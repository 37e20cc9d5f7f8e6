"""A health roll-up per job: targets up/down, firing alerts by severity, scrape errors."""

from __future__ import annotations

from collections import Counter, defaultdict

from pydantic import BaseModel, Field

from apps.core.errors import OpsError
from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from .alerting import prometheus_alerts
from .common import SourceInput, get_source
from .queries import TargetsInput, targets

NO_JOB = "(no job)"


class JobHealth(BaseModel):
    job: str
    status: str = Field(description="ok; degraded (some targets down or alerts firing); down (every target down).")
    targets_up: int
    targets_down: int
    targets_unknown: int
    scrape_errors: list[str] = Field(description="'instance: last error' of each target that failed its last scrape.")
    alerts_firing: dict[str, int] = Field(description="Firing alerts by severity label ('' when it has none).")


class HealthOutput(BaseModel):
    source: str
    status: str = Field(description="The worst job status.")
    jobs: list[JobHealth]
    alerts_firing: dict[str, int]
    alertmanager: str = Field(description="ok, not configured, or why it could not be reached.")


def _status(up: int, down: int, firing: dict[str, int]) -> str:
    if down and not up:
        return "down"
    if down or firing:
        return "degraded"
    return "ok"


@operation("monitoring.health", risk=Risk.READ, target=lambda p: p.source)
def health(ctx: Context, params: SourceInput) -> HealthOutput:
    """Roll up a source's health per job (scrape pool): targets up and down, firing alerts by severity, scrape errors.

    Alerts are assigned to the job in their `job` label; alerts without one are under "(no job)".
    """
    found = targets(ctx, TargetsInput(source=params.source)).targets
    firing = [a for a in prometheus_alerts(params.source) if a.state == "firing"]
    by_job: dict[str, list] = defaultdict(list)
    for target in found:
        by_job[target.job].append(target)
    alerts_by_job: dict[str, Counter] = defaultdict(Counter)
    for alert in firing:
        alerts_by_job[alert.labels.get("job") or NO_JOB][alert.severity] += 1
    jobs = []
    for job in sorted(set(by_job) | set(alerts_by_job)):
        members = by_job.get(job, [])
        count = Counter(t.health for t in members)
        errors = [f"{t.instance}: {t.last_error}" for t in members if t.last_error]
        alert_counts = dict(sorted(alerts_by_job.get(job, Counter()).items()))
        jobs.append(
            JobHealth(
                job=job,
                status=_status(count["up"], count["down"], alert_counts),
                targets_up=count["up"],
                targets_down=count["down"],
                targets_unknown=count["unknown"],
                scrape_errors=errors,
                alerts_firing=alert_counts,
            )
        )
    order = ["ok", "degraded", "down"]
    overall = max((j.status for j in jobs), key=order.index, default="ok")
    source = get_source(params.source)
    return HealthOutput(
        source=params.source,
        status=overall,
        jobs=jobs,
        alerts_firing=dict(sorted(Counter(a.severity for a in firing).items())),
        alertmanager=_alertmanager_status(source),
    )


def _alertmanager_status(source) -> str:
    if not source.alertmanager_url:
        return "not configured"
    from ..client import AlertmanagerClient

    try:
        AlertmanagerClient(source).call("GET", "status", retry=False)
    except OpsError as exc:
        return f"down: {exc.message}"
    return "ok"
