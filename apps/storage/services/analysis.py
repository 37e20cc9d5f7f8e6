"""storage.analyze: where the bytes are, how old they are, and what they cost."""

from __future__ import annotations

import heapq
import json
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from pydantic import BaseModel, Field

from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from ..client import StorageError, connect
from .common import BucketRef, Prefix, age_days, prefix_target

GIB = 1024**3
# USD per GiB-month, AWS S3 us-east-1 list prices; STORAGE_PRICE_TABLE or `prices` override them.
LIST_PRICES = {
    "STANDARD": 0.023,
    "REDUCED_REDUNDANCY": 0.024,
    "INTELLIGENT_TIERING": 0.023,
    "STANDARD_IA": 0.0125,
    "ONEZONE_IA": 0.01,
    "GLACIER_IR": 0.004,
    "GLACIER": 0.0036,
    "DEEP_ARCHIVE": 0.00099,
}
AGE_BUCKETS = [(7, "< 7 days"), (30, "7–30 days"), (90, "30–90 days"), (365, "90–365 days"), (float("inf"), "> 1 year")]


def price_table(override: dict[str, float] | None = None) -> dict[str, float]:
    table = dict(LIST_PRICES)
    if settings.STORAGE_PRICE_TABLE:
        try:
            table.update({str(k): float(v) for k, v in json.loads(settings.STORAGE_PRICE_TABLE).items()})
        except (ValueError, AttributeError) as exc:
            raise StorageError(f"STORAGE_PRICE_TABLE is not a JSON object of storage class → price: {exc}") from None
    table.update(override or {})
    return table


class AnalyzeInput(BucketRef):
    prefix: Prefix = ""
    depth: int = Field(1, ge=1, le=5, description="Group by this many path segments below the prefix.")
    top: int = Field(10, ge=1, le=100, description="How many of the largest objects to list.")
    prices: dict[str, float] | None = Field(None, description="USD per GiB-month by storage class, over the configured table.")
    now: datetime | None = Field(None, description="The time ages are measured from (default: now).")


class Tally(BaseModel):
    name: str
    objects: int = 0
    bytes: int = 0
    monthly_cost: float | None = None


class LargeObject(BaseModel):
    key: str
    size: int
    storage_class: str
    last_modified: datetime


class AnalyzeOutput(BaseModel):
    objects: int
    bytes: int
    by_prefix: list[Tally] = Field(description="Largest first.")
    by_storage_class: list[Tally]
    age_histogram: list[Tally] = Field(description="By time since last modification.")
    largest: list[LargeObject]
    monthly_cost: float = Field(description="Estimated USD per month for storage (not requests or transfer).")
    prices: dict[str, float]


def _group(key: str, prefix: str, depth: int) -> str:
    """The sub-prefix `depth` folders below `prefix` that holds `key` (objects right under it: the prefix)."""
    folders = key[len(prefix) :].split("/")[:-1]
    if not folders:
        return prefix or "(top level)"
    return prefix + "/".join(folders[:depth]) + "/"


def _tally(table: dict[str, Tally], name: str, size: int) -> None:
    entry = table.setdefault(name, Tally(name=name))
    entry.objects += 1
    entry.bytes += size


@operation("storage.analyze", risk=Risk.READ, long=True, target=prefix_target)
def analyze(ctx: Context, params: AnalyzeInput) -> AnalyzeOutput:
    """Analyze a bucket or prefix: bytes and object count per sub-prefix and storage class, the largest
    objects, an age histogram, and a monthly storage cost estimate from the price table. Runs as a job."""
    s3 = connect(params.connection)
    now = params.now or timezone.now()
    prices = price_table(params.prices)
    by_prefix: dict[str, Tally] = {}
    by_class: dict[str, Tally] = {}
    ages = {label: Tally(name=label) for _, label in AGE_BUCKETS}
    largest: list[tuple[int, str, dict]] = []
    count = size = 0
    for obj in s3.objects(params.bucket, params.prefix):
        count += 1
        size += obj["Size"]
        _tally(by_prefix, _group(obj["Key"], params.prefix, params.depth), obj["Size"])
        _tally(by_class, obj.get("StorageClass", "STANDARD"), obj["Size"])
        days = age_days(obj["LastModified"], now)
        label = next(label for limit, label in AGE_BUCKETS if days < limit)
        ages[label].objects += 1
        ages[label].bytes += obj["Size"]
        heapq.heappush(largest, (obj["Size"], obj["Key"], obj))
        if len(largest) > params.top:
            heapq.heappop(largest)
        if count % 1000 == 0:
            ctx.progress(50, f"{count} objects so far")  # the total is not known before the listing ends
    for tally in by_class.values():
        tally.monthly_cost = round(tally.bytes / GIB * prices.get(tally.name, prices["STANDARD"]), 4)
    ctx.log(f"{count} objects, {size} bytes under {params.bucket}/{params.prefix}")
    return AnalyzeOutput(
        objects=count,
        bytes=size,
        by_prefix=sorted(by_prefix.values(), key=lambda t: (-t.bytes, t.name)),
        by_storage_class=sorted(by_class.values(), key=lambda t: (-t.bytes, t.name)),
        age_histogram=list(ages.values()),
        largest=[
            LargeObject(key=k, size=s, storage_class=o.get("StorageClass", "STANDARD"), last_modified=o["LastModified"])
            for s, k, o in sorted(largest, key=lambda t: (-t[0], t[1]))
        ],
        monthly_cost=round(sum(t.monthly_cost or 0 for t in by_class.values()), 4),
        prices=prices,
    )
