"""Reading Prometheus: instant and range queries, series, labels, targets, rules."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Literal

from django.conf import settings
from django.utils import timezone
from pydantic import BaseModel, Field, model_validator

from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from ..errors import MonitoringError
from .common import LABEL_NAME_PATTERN, PromQL, SourceInput, Time, parse_time, prometheus, sample_value

MAX_POINTS = 11_000  # Prometheus' own limit per series


class QueryInput(SourceInput):
    query: PromQL
    time: Time = Field(None, description="Evaluation time (ISO 8601); default: now.")


class Series(BaseModel):
    labels: dict[str, str]
    value: float | None = Field(description="The sample value; null for NaN.")
    timestamp: datetime | None = None


class QueryOutput(BaseModel):
    source: str
    query: str
    result_type: str = Field(description="vector, scalar or string.")
    series: list[Series]


def instant_series(result_type: str, result) -> list[Series]:
    if result_type == "vector":
        return [
            Series(labels=item["metric"], value=sample_value(item["value"][1]), timestamp=datetime.fromtimestamp(item["value"][0], tz=UTC))
            for item in result
        ]
    if result_type == "scalar":
        return [Series(labels={}, value=sample_value(result[1]), timestamp=datetime.fromtimestamp(result[0], tz=UTC))]
    if result_type == "string":
        return [Series(labels={"value": result[1]}, value=None, timestamp=datetime.fromtimestamp(result[0], tz=UTC))]
    raise MonitoringError(
        "The query returns a range vector (a matrix): use monitoring.query_range, "
        "or reduce it with a function such as rate() or max_over_time().",
        422,
    )


@operation("monitoring.query", risk=Risk.READ, target=lambda p: f"{p.source}: {p.query[:200]}")
def query(ctx: Context, params: QueryInput) -> QueryOutput:
    """Run an instant PromQL query on a Prometheus source.

    Returns one value per series at `time` (default now): `series[i].labels` and
    `series[i].value`. Range vectors (`x[5m]`) are refused: use
    monitoring.query_range. Errors in the query come back as Prometheus words them.
    """
    data = prometheus(params.source).query(params.query, params.time)
    return QueryOutput(
        source=params.source, query=params.query, result_type=data["resultType"], series=instant_series(data["resultType"], data["result"])
    )


class QueryRangeInput(SourceInput):
    query: PromQL
    start: Time = Field(None, description="Start (ISO 8601); default: one hour before end.")
    end: Time = Field(None, description="End (ISO 8601); default: now.")
    step_seconds: float | None = Field(None, gt=0, description="Resolution in seconds; default: the range in 240 points, at least 1 s.")

    @model_validator(mode="after")
    def _bounds(self):
        self.end = self.end or timezone.now()
        self.start = self.start or self.end - timedelta(hours=1)
        span = (self.end - self.start).total_seconds()
        if span <= 0:
            raise ValueError("start must be before end.")
        limit = settings.MONITORING_MAX_RANGE_DAYS
        if span > limit * 86400:
            raise ValueError(f"The range is {span / 86400:.1f} days; the console allows at most {limit} days (MONITORING_MAX_RANGE_DAYS).")
        if self.step_seconds is None:
            self.step_seconds = auto_step(span)
        points = math.floor(span / self.step_seconds) + 1
        if points > MAX_POINTS:
            least = math.ceil(span / (MAX_POINTS - 1))
            raise ValueError(
                f"{points:,} points per series is more than Prometheus' limit of {MAX_POINTS:,}: use a step of at least {least} s."
            )
        return self


def auto_step(span_seconds: float, points: int | None = None) -> float:
    """A step giving about `points` points over the span: whole seconds, at least 1."""
    return float(max(1, math.ceil(span_seconds / (points or settings.MONITORING_DASHBOARD_POINTS))))


class RangeSeries(BaseModel):
    labels: dict[str, str]
    points: list[tuple[float, float | None]] = Field(description="[unix time, value] pairs; value null for NaN.")


class QueryRangeOutput(BaseModel):
    source: str
    query: str
    result_type: str = "matrix"
    start: datetime
    end: datetime
    step_seconds: float
    series: list[RangeSeries]


def range_series(data: dict) -> list[RangeSeries]:
    """Series built without validating each point: the loop makes the floats the model wants,
    and a dashboard holds thousands of points (validation was most of its parsing time)."""
    if data["resultType"] != "matrix":
        raise MonitoringError(f"Prometheus returned a {data['resultType']} for a range query.", 502)
    return [RangeSeries.model_construct(labels=item["metric"], points=_points(item["values"])) for item in data["result"]]


def _points(values: list) -> list[tuple[float, float | None]]:
    """sample_value inlined (NaN is the one float unequal to itself): a call per point was a fifth of a panel's CPU."""
    return [(float(t), x if (x := float(v)) == x else None) for t, v in values]


@operation("monitoring.query_range", risk=Risk.READ, target=lambda p: f"{p.source}: {p.query[:200]}")
def query_range(ctx: Context, params: QueryRangeInput) -> QueryRangeOutput:
    """Run a PromQL range query: values of each series from start to end every step.

    Refused before it is sent when it would exceed 11,000 points per series
    (Prometheus' limit) or the console's maximum range; the message says which
    step would fit. Returns `series[i].points` as [unix time, value] pairs.
    """
    data = prometheus(params.source).query_range(params.query, params.start, params.end, params.step_seconds)
    return QueryRangeOutput(
        source=params.source,
        query=params.query,
        start=params.start,
        end=params.end,
        step_seconds=params.step_seconds,
        series=range_series(data),
    )


class SeriesInput(SourceInput):
    match: list[PromQL] = Field(min_length=1, max_length=20, description='Series selectors, e.g. up{job="api"}; one per line.')
    start: Time = Field(None, description="Default: Prometheus' default (the whole retention).")
    end: Time = None
    limit: int = Field(500, ge=1, le=10_000, description="Return at most this many series.")


class SeriesOutput(BaseModel):
    series: list[dict[str, str]]
    truncated: bool = Field(description="More series matched than `limit`.")


def _ts(value: datetime | None) -> str | None:
    return None if value is None else f"{value.timestamp():.3f}"


@operation("monitoring.series", risk=Risk.READ, target=lambda p: f"{p.source}: {', '.join(p.match)[:200]}")
def series(ctx: Context, params: SeriesInput) -> SeriesOutput:
    """List the series (label sets) that match selectors, optionally within a time window."""
    form = {"match[]": params.match, "start": _ts(params.start), "end": _ts(params.end)}
    found = prometheus(params.source).api("series", form, form=True)
    return SeriesOutput(series=found[: params.limit], truncated=len(found) > params.limit)


class LabelsInput(SourceInput):
    label: str | None = Field(
        None, pattern=LABEL_NAME_PATTERN, description="Give a label name to list its values; leave empty for label names."
    )
    match: list[PromQL] = Field(default_factory=list, max_length=20, description="Only series matching these selectors.")
    start: Time = None
    end: Time = None


class LabelsOutput(BaseModel):
    label: str | None
    values: list[str] = Field(description="Label names, or the values of `label`.")


@operation("monitoring.labels", risk=Risk.READ, target=lambda p: f"{p.source}: {p.label or 'label names'}")
def labels(ctx: Context, params: LabelsInput) -> LabelsOutput:
    """List label names, or the values of one label, optionally only over series matching selectors."""
    query = {"match[]": params.match or None, "start": _ts(params.start), "end": _ts(params.end)}
    endpoint = f"label/{params.label}/values" if params.label else "labels"
    return LabelsOutput(label=params.label, values=prometheus(params.source).api(endpoint, query))


class TargetsInput(SourceInput):
    state: Literal["active", "dropped", "any"] = "active"
    health: Literal["any", "up", "down", "unknown"] = Field("any", description="Only active targets in this health.")
    job: str | None = Field(None, max_length=200, description="Only this job (scrape pool).")


class Target(BaseModel):
    job: str
    instance: str
    state: str = Field(description="active or dropped")
    health: str = Field(description="up, down or unknown (dropped targets: unknown)")
    scrape_url: str
    last_error: str
    last_scrape: datetime | None
    last_scrape_seconds: float | None
    labels: dict[str, str]


class TargetsOutput(BaseModel):
    targets: list[Target]
    up: int
    down: int
    unknown: int


def _target(item: dict, state: str) -> Target:
    labels = item.get("labels") or item.get("discoveredLabels", {})
    return Target(
        job=item.get("scrapePool") or labels.get("job", ""),
        instance=labels.get("instance") or labels.get("__address__", ""),
        state=state,
        health=item.get("health", "unknown"),
        scrape_url=item.get("scrapeUrl", ""),
        last_error=item.get("lastError", ""),
        last_scrape=parse_time(item.get("lastScrape")),
        last_scrape_seconds=item.get("lastScrapeDuration"),
        labels=labels,
    )


@operation("monitoring.targets", risk=Risk.READ, target=lambda p: f"{p.source}: {p.state}/{p.health}")
def targets(ctx: Context, params: TargetsInput) -> TargetsOutput:
    """List scrape targets with their health (up/down), last error and scrape time; filter by state, health and job."""
    data = prometheus(params.source).api("targets", {"state": params.state})
    found = [_target(t, "active") for t in data.get("activeTargets") or []]
    found += [_target(t, "dropped") for t in data.get("droppedTargets") or []]
    if params.job:
        found = [t for t in found if t.job == params.job]
    counts = {h: sum(1 for t in found if t.state == "active" and t.health == h) for h in ("up", "down", "unknown")}
    if params.health != "any":
        found = [t for t in found if t.health == params.health]
    found.sort(key=lambda t: (t.job, t.instance))
    return TargetsOutput(targets=found, **counts)


class RulesInput(SourceInput):
    type: Literal["any", "alert", "record"] = "any"


class Rule(BaseModel):
    name: str
    type: str = Field(description="alerting or recording")
    query: str
    health: str
    state: str | None = Field(description="Alerting rules: inactive, pending or firing.")
    last_error: str
    labels: dict[str, str]
    for_seconds: float | None
    active_alerts: int


class RuleGroup(BaseModel):
    name: str
    file: str
    interval_seconds: float | None
    rules: list[Rule]


class RulesOutput(BaseModel):
    groups: list[RuleGroup]


@operation("monitoring.rules", risk=Risk.READ, target=lambda p: f"{p.source}: {p.type} rules")
def rules(ctx: Context, params: RulesInput) -> RulesOutput:
    """List alerting and recording rules by group, with their health, state and last error."""
    data = prometheus(params.source).api("rules", {"type": None if params.type == "any" else params.type})
    groups = []
    for group in data.get("groups", []):
        items = [
            Rule(
                name=r["name"],
                type=r["type"],
                query=r["query"],
                health=r.get("health", "unknown"),
                state=r.get("state"),
                last_error=r.get("lastError", ""),
                labels=r.get("labels") or {},
                for_seconds=r.get("duration"),
                active_alerts=len(r.get("alerts") or []),
            )
            for r in group.get("rules", [])
        ]
        groups.append(RuleGroup(name=group["name"], file=group.get("file", ""), interval_seconds=group.get("interval"), rules=items))
    return RulesOutput(groups=groups)
