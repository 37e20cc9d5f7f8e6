"""storage.lifecycle_get / storage.lifecycle_put: a bucket's lifecycle rules, validated."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from ..client import connect
from .common import BucketRef, Prefix, StorageClass

# Classes S3 accepts a transition to only after 30 days in STANDARD.
MIN_30_DAYS = {"STANDARD_IA", "ONEZONE_IA"}
NO_LIFECYCLE = ("NoSuchLifecycleConfiguration",)


class Transition(BaseModel):
    days: int = Field(ge=0, le=36500)
    storage_class: StorageClass


class LifecycleRule(BaseModel):
    id: str = Field(min_length=1, max_length=255)
    prefix: Prefix = ""
    enabled: bool = True
    transitions: list[Transition] = Field(default_factory=list, description="Move current versions to cheaper classes after N days.")
    expiration_days: int | None = Field(None, ge=1, le=36500, description="Delete current versions N days after creation.")
    noncurrent_transitions: list[Transition] = Field(default_factory=list)
    noncurrent_expiration_days: int | None = Field(
        None, ge=1, le=36500, description="Delete old versions N days after they became noncurrent."
    )
    abort_incomplete_multipart_days: int | None = Field(
        None, ge=1, le=36500, description="Abort unfinished multipart uploads after N days."
    )

    @model_validator(mode="after")
    def coherent(self):
        actions = (
            self.transitions,
            self.expiration_days,
            self.noncurrent_transitions,
            self.noncurrent_expiration_days,
            self.abort_incomplete_multipart_days,
        )
        if not any(actions):
            raise ValueError(f"rule {self.id}: give at least one action")
        for name, transitions, expiry in (
            ("transitions", self.transitions, self.expiration_days),
            ("noncurrent_transitions", self.noncurrent_transitions, self.noncurrent_expiration_days),
        ):
            days = [t.days for t in transitions]
            if days != sorted(set(days)):
                raise ValueError(f"rule {self.id}: {name} must have increasing days")
            if len({t.storage_class for t in transitions}) != len(transitions):
                raise ValueError(f"rule {self.id}: {name} name a storage class twice")
            for t in transitions:
                if t.storage_class in MIN_30_DAYS and t.days < 30:
                    raise ValueError(f"rule {self.id}: a transition to {t.storage_class} needs at least 30 days")
            if expiry is not None and days and expiry <= days[-1]:
                raise ValueError(f"rule {self.id}: expiration must come after the last transition")
        return self

    @property
    def deletes_data(self) -> bool:
        return self.expiration_days is not None or self.noncurrent_expiration_days is not None


class LifecycleOutput(BucketRef):
    rules: list[LifecycleRule]


def _to_s3(rule: LifecycleRule) -> dict:
    out: dict = {"ID": rule.id, "Filter": {"Prefix": rule.prefix}, "Status": "Enabled" if rule.enabled else "Disabled"}
    if rule.transitions:
        out["Transitions"] = [{"Days": t.days, "StorageClass": t.storage_class} for t in rule.transitions]
    if rule.expiration_days:
        out["Expiration"] = {"Days": rule.expiration_days}
    if rule.noncurrent_transitions:
        out["NoncurrentVersionTransitions"] = [
            {"NoncurrentDays": t.days, "StorageClass": t.storage_class} for t in rule.noncurrent_transitions
        ]
    if rule.noncurrent_expiration_days:
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": rule.noncurrent_expiration_days}
    if rule.abort_incomplete_multipart_days:
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": rule.abort_incomplete_multipart_days}
    return out


def _from_s3(rule: dict) -> LifecycleRule:
    prefix = (rule.get("Filter") or {}).get("Prefix", rule.get("Prefix", "")) or ""
    return LifecycleRule(
        id=rule.get("ID") or "(unnamed)",
        prefix=prefix,
        enabled=rule.get("Status") == "Enabled",
        transitions=[Transition(days=t["Days"], storage_class=t["StorageClass"]) for t in rule.get("Transitions", []) if "Days" in t],
        expiration_days=(rule.get("Expiration") or {}).get("Days"),
        noncurrent_transitions=[
            Transition(days=t["NoncurrentDays"], storage_class=t["StorageClass"]) for t in rule.get("NoncurrentVersionTransitions", [])
        ],
        noncurrent_expiration_days=(rule.get("NoncurrentVersionExpiration") or {}).get("NoncurrentDays"),
        abort_incomplete_multipart_days=(rule.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation"),
    )


def read_rules(s3, bucket: str) -> list[LifecycleRule]:
    config = s3.optional("get_bucket_lifecycle_configuration", NO_LIFECYCLE, Bucket=bucket)
    return [_from_s3(r) for r in (config or {}).get("Rules", [])]


@operation("storage.lifecycle_get", risk=Risk.READ, target=lambda p: f"{p.connection}:{p.bucket}")
def lifecycle_get(ctx: Context, params: BucketRef) -> LifecycleOutput:
    """Read a bucket's lifecycle rules (transitions, expiration, noncurrent versions, abort incomplete multipart)."""
    return LifecycleOutput(connection=params.connection, bucket=params.bucket, rules=read_rules(connect(params.connection), params.bucket))


class LifecyclePutInput(BucketRef):
    rules: list[LifecycleRule] = Field(max_length=1000, description="The complete new rule set; an empty list removes every rule.")

    @model_validator(mode="after")
    def unique_ids(self):
        ids = [r.id for r in self.rules]
        if len(ids) != len(set(ids)):
            raise ValueError("rule ids must be unique")
        return self


def plan_lifecycle_put(ctx: Context, params: LifecyclePutInput) -> dict:
    """The bucket's lifecycle rules now (before) and the complete new set (after)."""
    before = read_rules(connect(params.connection), params.bucket)
    return {
        "summary": f"Replace the lifecycle rules of {params.connection}:{params.bucket} ({len(before)} → {len(params.rules)} rules).",
        "before": {r.id: r.model_dump(mode="json") for r in before},
        "after": {r.id: r.model_dump(mode="json") for r in params.rules},
        "expiring_rules": sorted(r.id for r in params.rules if r.deletes_data),
    }


@operation(
    "storage.lifecycle_put",
    planner=plan_lifecycle_put,
    risk=Risk.RISKY,
    # Rules that expire objects delete data: they wait for approval; the others do not.
    approval_scope=lambda p: "" if any(r.deletes_data for r in p.rules) else None,
    target=lambda p: f"{p.connection}:{p.bucket}",
)
def lifecycle_put(ctx: Context, params: LifecyclePutInput) -> LifecycleOutput:
    """Replace a bucket's lifecycle rules after validating them (increasing transition days, 30-day minimum
    for IA classes, expiration after the last transition). Rules that expire objects need approval."""
    s3 = connect(params.connection)
    if params.rules:
        s3.call(
            "put_bucket_lifecycle_configuration", Bucket=params.bucket, LifecycleConfiguration={"Rules": [_to_s3(r) for r in params.rules]}
        )
    else:
        s3.call("delete_bucket_lifecycle", Bucket=params.bucket)
    return LifecycleOutput(connection=params.connection, bucket=params.bucket, rules=read_rules(s3, params.bucket))
