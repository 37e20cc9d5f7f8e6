"""storage.compliance_report: each bucket's protection settings and how well its
objects are classified and encrypted."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

from django.utils import timezone
from pydantic import BaseModel, Field

from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from ..client import S3, connect
from .common import Classification, ConnectionName, classification_of, tags_of
from .lifecycle import read_rules
from .objects import versioning_of


class ComplianceInput(BaseModel):
    connection: ConnectionName
    buckets: list[str] = Field(default_factory=list, description="Buckets to report on; empty = every bucket of the connection.")
    sample: int = Field(500, ge=1, le=100_000, description="Objects per bucket whose tags and encryption are checked.")


class BucketCompliance(BaseModel):
    bucket: str
    status: str = Field(description="pass, or fail when there is any finding.")
    default_encryption: str = Field(description="AES256, aws:kms or none.")
    versioning: str
    public_access_block: str = Field(description="all blocked, partial, or not set.")
    policy: str = Field(description="none, private, or public (an Allow to everyone without condition).")
    object_lock: bool
    lifecycle_rules: int
    objects_checked: int
    sample_limited: bool = Field(description="True when the bucket holds more objects than were checked.")
    classified: int
    classification_coverage: float = Field(description="Percent of checked objects with a valid classification tag.")
    by_classification: dict[str, int]
    restricted_unencrypted: list[str] = Field(description="Restricted objects stored without server-side encryption.")
    findings: list[str]


class ComplianceOutput(BaseModel):
    connection: str
    generated_at: datetime
    buckets: list[BucketCompliance]


MISSING_ENCRYPTION = ("ServerSideEncryptionConfigurationNotFoundError",)
MISSING_PAB = ("NoSuchPublicAccessBlockConfiguration",)
MISSING_POLICY = ("NoSuchBucketPolicy",)
MISSING_LOCK = ("ObjectLockConfigurationNotFoundError", "ObjectLockConfigurationNotFound")


def _encryption(s3: S3, bucket: str) -> str:
    config = s3.optional("get_bucket_encryption", MISSING_ENCRYPTION, Bucket=bucket)
    rules = (config or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    return rules[0].get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm", "none") if rules else "none"


def _public_access_block(s3: S3, bucket: str) -> str:
    config = s3.optional("get_public_access_block", MISSING_PAB, Bucket=bucket)
    flags = list((config or {}).get("PublicAccessBlockConfiguration", {}).values())
    if not flags or not any(flags):
        return "not set"
    return "all blocked" if len(flags) == 4 and all(flags) else "partial"


def _policy(s3: S3, bucket: str) -> str:
    config = s3.optional("get_bucket_policy", MISSING_POLICY, Bucket=bucket)
    if not config:
        return "none"
    statements = json.loads(config["Policy"]).get("Statement", [])
    for st in statements if isinstance(statements, list) else [statements]:
        principal = st.get("Principal")
        everyone = principal == "*" or (isinstance(principal, dict) and "*" in (principal.get("AWS"), [principal.get("AWS")]))
        if st.get("Effect") == "Allow" and everyone and not st.get("Condition"):
            return "public"
    return "private"


def _object_lock(s3: S3, bucket: str) -> bool:
    config = s3.optional("get_object_lock_configuration", MISSING_LOCK, Bucket=bucket)
    return (config or {}).get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"


def _objects(s3: S3, bucket: str, sample: int) -> tuple[int, bool, dict[str, int], list[str]]:
    checked, counts, exposed = 0, {c.value: 0 for c in Classification}, []
    for obj in s3.objects(bucket):
        if checked == sample:
            return checked, True, counts, exposed
        checked += 1
        classification = classification_of(tags_of(s3, bucket, obj["Key"]))
        if classification is None:
            continue
        counts[classification.value] += 1
        if classification is Classification.RESTRICTED:
            head = s3.call("head_object", Bucket=bucket, Key=obj["Key"])
            if not head.get("ServerSideEncryption"):
                exposed.append(obj["Key"])
    return checked, False, counts, exposed


def bucket_compliance(s3: S3, bucket: str, sample: int) -> BucketCompliance:
    checked, limited, counts, exposed = _objects(s3, bucket, sample)
    classified = sum(counts.values())
    row = BucketCompliance(
        bucket=bucket,
        status="pass",
        default_encryption=_encryption(s3, bucket),
        versioning=versioning_of(s3, bucket),
        public_access_block=_public_access_block(s3, bucket),
        policy=_policy(s3, bucket),
        object_lock=_object_lock(s3, bucket),
        lifecycle_rules=len(read_rules(s3, bucket)),
        objects_checked=checked,
        sample_limited=limited,
        classified=classified,
        classification_coverage=round(100 * classified / checked, 1) if checked else 100.0,
        by_classification=counts,
        restricted_unencrypted=exposed[:1000],
        findings=[],
    )
    checks = [
        (row.default_encryption == "none", "no default encryption"),
        (row.versioning != "Enabled", "versioning is not enabled"),
        (row.public_access_block != "all blocked", "public access is not fully blocked"),
        (row.policy == "public", "the bucket policy allows public access"),
        (row.lifecycle_rules == 0, "no lifecycle rules"),
        (classified < checked, f"{checked - classified} of {checked} objects have no classification tag"),
        (bool(exposed), f"{len(exposed)} restricted objects are not encrypted"),
    ]
    row.findings = [text for failed, text in checks if failed]
    row.status = "fail" if row.findings else "pass"
    return row


@operation("storage.compliance_report", risk=Risk.READ, target=lambda p: f"{p.connection}:{','.join(p.buckets) or '*'}")
def compliance_report(ctx: Context, params: ComplianceInput) -> ComplianceOutput:
    """Per bucket: default encryption, versioning, public access block and policy, object lock, lifecycle
    rules, classification tag coverage and restricted objects without encryption (objects checked up to
    `sample` per bucket). Shown in the web UI and downloadable as CSV and JSON."""
    s3 = connect(params.connection)
    names = params.buckets or [b["Name"] for b in s3.call("list_buckets").get("Buckets", [])]
    rows = [bucket_compliance(s3, name, params.sample) for name in names]
    return ComplianceOutput(connection=params.connection, generated_at=timezone.now(), buckets=rows)


CSV_COLUMNS = [
    "bucket", "status", "default_encryption", "versioning", "public_access_block", "policy", "object_lock", "lifecycle_rules",
    "objects_checked", "sample_limited", "classified", "classification_coverage", "public", "internal", "confidential", "restricted",
    "restricted_unencrypted", "findings",
]  # fmt: skip


def _cell(value):
    """Object keys are user data: keep spreadsheet programs from reading them as formulas."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(report: ComplianceOutput) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in report.buckets:
        data = row.model_dump()
        data.update(row.by_classification)
        data["restricted_unencrypted"] = " ".join(row.restricted_unencrypted)
        data["findings"] = "; ".join(row.findings)
        writer.writerow([_cell(data[c]) for c in CSV_COLUMNS])
    return out.getvalue()
