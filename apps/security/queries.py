"""Finding filters shared by the list, the exports and the pages."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet
from pydantic import BaseModel, Field

from .models import SEVERITIES, Finding

STATUS_VALUES = [s for s, _ in Finding.STATUSES]


class FindingFilter(BaseModel):
    status: list[str] = Field(
        default_factory=lambda: ["open", "triaged"], description="Statuses to include: open, triaged, accepted, false_positive, fixed."
    )
    severity: list[str] = Field(
        default_factory=list, description="Severities to include (critical, high, medium, unknown, low, info); empty = all."
    )
    kind: str = Field("", description="secrets, dependencies, source or image; empty = all.")
    target: str = Field("", max_length=300, description="Only findings whose target contains this text.")
    rule: str = Field("", max_length=100, description="Only this rule (e.g. github-pat, B602, GHSA-...).")
    assignee: str = Field("", max_length=150, description="Only findings assigned to this username ('-' = unassigned).")
    search: str = Field("", max_length=200, description="Text in the title, path, package or alias (CVE id).")
    include_examples: bool = Field(True, description="Include documentation placeholders flagged as examples.")

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.model_dump(exclude_defaults=True).items()]
        return " ".join(parts)[:300] or "open findings"


def filtered(f: FindingFilter) -> QuerySet:
    qs = Finding.objects.all()
    statuses = [s for s in f.status if s in STATUS_VALUES]
    if statuses:
        qs = qs.filter(status__in=statuses)
    severities = [s for s in f.severity if s in SEVERITIES]
    if severities:
        qs = qs.filter(severity__in=severities)
    if f.kind:
        qs = qs.filter(kind=f.kind)
    if f.target:
        qs = qs.filter(target__icontains=f.target)
    if f.rule:
        qs = qs.filter(rule=f.rule)
    if f.assignee == "-":
        qs = qs.filter(assignee__isnull=True)
    elif f.assignee:
        qs = qs.filter(assignee__username=f.assignee)
    if f.search:
        s = f.search
        qs = qs.filter(
            Q(title__icontains=s) | Q(path__icontains=s) | Q(package__icontains=s) | Q(aliases__icontains=s) | Q(rule__icontains=s)
        )
    if not f.include_examples:
        qs = qs.filter(example=False)
    return qs


class FindingOut(BaseModel):
    id: int
    kind: str
    target: str
    rule: str
    title: str
    severity: str
    status: str
    location: str
    path: str
    line: int | None
    commit: str
    preview: str = Field(description="Masked: never the full secret.")
    example: bool
    owasp: str
    cwe: str
    package: str
    version: str
    fixed_in: str
    aliases: list[str]
    remediation: str
    assignee: str
    accepted_until: datetime | None
    first_seen: datetime
    last_seen: datetime

    @classmethod
    def of(cls, f: Finding) -> FindingOut:
        return cls(
            id=f.pk,
            kind=f.kind,
            target=f.target,
            rule=f.rule,
            title=f.title,
            severity=f.severity,
            status=f.status,
            location=f.location,
            path=f.path,
            line=f.line,
            commit=f.commit,
            preview=f.preview,
            example=f.example,
            owasp=f.owasp,
            cwe=f.cwe,
            package=f.package,
            version=f.version,
            fixed_in=f.fixed_in,
            aliases=list(f.aliases or []),
            remediation=f.remediation,
            assignee=f.assignee.username if f.assignee else "",
            accepted_until=f.accepted_until,
            first_seen=f.first_seen,
            last_seen=f.last_seen,
        )


def summary() -> dict:
    """Counts for the dashboard: active findings by severity and kind, every status, the noisiest rules."""
    from django.db.models import Count

    from .models import Advisory

    active = Finding.objects.filter(status__in=Finding.ACTIVE)
    by_severity = dict(active.values_list("severity").annotate(n=Count("id")))
    return {
        "by_severity": [(s, by_severity.get(s, 0)) for s in SEVERITIES],
        "by_kind": list(active.values_list("kind").annotate(n=Count("id")).order_by("kind")),
        "by_status": dict(Finding.objects.values_list("status").annotate(n=Count("id"))),
        "top_rules": list(active.values("rule", "kind").annotate(n=Count("id")).order_by("-n", "rule")[:8]),
        "active_total": sum(by_severity.values()),
        "advisories": Advisory.objects.count(),
    }
