"""What the monitoring operations share: naming a source, PromQL and time fields."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated

from django.conf import settings
from django.utils import timezone
from pydantic import AfterValidator, BaseModel, Field

from ..client import AlertmanagerClient, PrometheusClient
from ..errors import MonitoringError
from ..models import PrometheusSource
from ..promql import check_ranges


def _aware(value: datetime | None) -> datetime | None:
    """Times without a zone (a browser's datetime-local field) are in the console's TIME_ZONE."""
    if value is not None and timezone.is_naive(value):
        return timezone.make_aware(value)
    return value


SourceName = Annotated[
    str,
    Field(
        max_length=60, pattern=r"^[-a-zA-Z0-9_]+$", description='Name of a registered Prometheus source ("default" unless told otherwise).'
    ),
]


def _bounded(query: str) -> str:
    from .queries import MAX_POINTS

    return check_ranges(query, max_seconds=settings.MONITORING_MAX_RANGE_DAYS * 86400, max_points=MAX_POINTS)


PromQL = Annotated[
    str,
    # The length first: a long query is refused before it is parsed.
    Field(
        min_length=1,
        max_length=settings.MONITORING_MAX_QUERY_CHARS,
        description="A PromQL expression.",
        json_schema_extra={"widget": "textarea"},
    ),
    AfterValidator(_bounded),
]
Time = Annotated[datetime | None, AfterValidator(_aware)]
LABEL_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"


class SourceInput(BaseModel):
    source: SourceName = "default"


def get_source(name: str) -> PrometheusSource:
    source = PrometheusSource.objects.filter(name=name).first()
    if source is None:
        known = (
            ", ".join(PrometheusSource.objects.values_list("name", flat=True)) or "none yet: an admin adds them under Monitoring → Sources"
        )
        raise MonitoringError(f"There is no Prometheus source named {name!r} (known: {known}).", 404)
    return source


def prometheus(name: str) -> PrometheusClient:
    return PrometheusClient(get_source(name))


def alertmanager(name: str) -> AlertmanagerClient:
    return AlertmanagerClient(get_source(name))


def sample_value(text: str) -> float | None:
    """A Prometheus sample value ("1.5", "NaN", "+Inf"); NaN becomes None (no value)."""
    value = float(text)
    return None if math.isnan(value) else value


def parse_time(text: str | None) -> datetime | None:
    if not text or text.startswith("0001-01-01"):
        return None
    return datetime.fromisoformat(text)
