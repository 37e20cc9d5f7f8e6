"""Findings across scans: a scan's observations become findings (new, seen
again, reopened), findings no longer seen are fixed, accepted risks expire,
and people triage them. One model for every kind of scanner."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q

from .errors import ScanError
from .models import SEVERITY_RANK, Finding, FindingComment, Scan

UPDATED_FIELDS = [
    "title",
    "severity",
    "severity_rank",
    "line",
    "commit",
    "preview",
    "example",
    "fixed_in",
    "detail",
    "last_seen",
    "last_scan",
    "status",
    "accepted_until",
    "exception",
]
MAX_ACCEPT_DAYS = 366


@dataclass
class Observation:
    """What a scanner saw, before it is a Finding."""

    kind: str
    rule: str
    title: str
    severity: str
    path: str = ""
    line: int | None = None
    commit: str = ""
    preview: str = ""
    secret_hash: str = ""
    example: bool = False
    owasp: str = ""
    cwe: str = ""
    package: str = ""
    version: str = ""
    fixed_in: str = ""
    aliases: list[str] = field(default_factory=list)
    detail: str = ""
    identity: str = ""  # what makes it the same finding next time besides rule and path (secret hash, code line)
    exception_id: int | None = None  # a scoped exception covers it: an accepted finding until accepted_until
    accepted_until: datetime | None = None


def fingerprint(target: str, obs: Observation) -> str:
    parts = [obs.kind, target, obs.rule, obs.path, obs.package, obs.version, obs.identity]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


# A critical vulnerability, or a secret its provider said is live: the findings a gate fails on by default.
# Taking one out of the gate takes a second person (security.triage_finding, security.add_exception).
GUARDED = Q(kind="dependencies", severity="critical") | Q(verification="live")


@transaction.atomic
def record(scan: Scan, observations: list[Observation], now: datetime, *, narrowed: bool = False) -> dict[str, int]:
    """Merge a complete scan's observations into the findings of its target. A `narrowed` scan (the caller's own
    allow-lists) fixes no guarded finding it does not see: else one scan call would be the way around the second
    person that taking it out of the gate needs."""
    unique: dict[str, Observation] = {}
    for obs in observations:
        unique.setdefault(fingerprint(scan.target, obs), obs)
    existing = {f.fingerprint: f for f in Finding.objects.select_for_update().filter(fingerprint__in=list(unique))}
    new, seen, comments = [], [], []
    reopened = 0
    for fp, obs in unique.items():
        finding = existing.get(fp)
        if finding is None:
            new.append(_new_finding(fp, scan, obs, now))
            continue
        for name in ("title", "severity", "line", "commit", "preview", "example", "fixed_in", "detail"):
            setattr(finding, name, getattr(obs, name) if getattr(obs, name) is not None else getattr(finding, name))
        if finding.verification == "live":
            finding.severity = "critical"  # the provider accepted it: whatever the rule says
        finding.severity_rank = SEVERITY_RANK.get(finding.severity, 9)
        finding.last_seen, finding.last_scan = now, scan
        if finding.status == Finding.FIXED:
            finding.status = Finding.OPEN
            reopened += 1
            comments.append(
                FindingComment(finding=finding, text=f"Seen again in scan {scan.pk}: reopened.", status_from="fixed", status_to="open")
            )
        comments.extend(_follow_exception(finding, obs))
        seen.append(finding)
    Finding.objects.bulk_create(new, batch_size=500)
    comments.extend(_exception_comment(f, "open") for f in new if f.exception_id)
    Finding.objects.bulk_update(seen, UPDATED_FIELDS, batch_size=500)
    # what an exception accepted is fixed too when it goes (a manually accepted risk stays as the person left it)
    covered = Q(status=Finding.ACCEPTED, exception__isnull=False)
    current = Finding.objects.filter(target=scan.target, kind=scan.kind).filter(Q(status__in=Finding.ACTIVE) | covered)
    gone = current.exclude(fingerprint__in=list(unique))
    gone = list(gone.exclude(GUARDED) if narrowed else gone)
    for finding in gone:
        comments.append(
            FindingComment(finding=finding, text=f"Not seen in scan {scan.pk}: fixed.", status_from=finding.status, status_to="fixed")
        )
    Finding.objects.filter(pk__in=[f.pk for f in gone]).update(status=Finding.FIXED, exception=None, accepted_until=None)
    FindingComment.objects.bulk_create(comments, batch_size=500)
    expire_acceptances(now)
    return {"new": len(new), "seen_again": len(seen), "reopened": reopened, "fixed": len(gone), "total": len(unique)}


def _exception_comment(finding: Finding, status_from: str) -> FindingComment:
    return FindingComment(
        finding=finding,
        text=f"Covered by exception #{finding.exception_id} until {finding.accepted_until:%Y-%m-%d}: accepted.",
        status_from=status_from,
        status_to=Finding.ACCEPTED,
    )


def _follow_exception(finding: Finding, obs: Observation) -> list[FindingComment]:
    """An exception now covers the finding (accepted), or the one it was accepted under no longer does (open)."""
    if obs.exception_id and (finding.exception_id != obs.exception_id or finding.status != Finding.ACCEPTED):
        status_from = finding.status
        finding.status, finding.exception_id, finding.accepted_until = Finding.ACCEPTED, obs.exception_id, obs.accepted_until
        return [_exception_comment(finding, status_from)]
    if not obs.exception_id and finding.exception_id and finding.status == Finding.ACCEPTED:
        old = finding.exception_id
        finding.status, finding.exception_id, finding.accepted_until = Finding.OPEN, None, None
        return [
            FindingComment(
                finding=finding, text=f"Exception #{old} no longer covers it: open again.", status_from="accepted", status_to="open"
            )
        ]
    return []


def _new_finding(fp: str, scan: Scan, obs: Observation, now: datetime) -> Finding:
    return Finding(
        fingerprint=fp,
        kind=obs.kind,
        target=scan.target,
        rule=obs.rule,
        title=obs.title[:300],
        severity=obs.severity,
        severity_rank=SEVERITY_RANK.get(obs.severity, 9),
        path=obs.path[:1000],
        line=obs.line,
        commit=obs.commit,
        preview=obs.preview[:300],
        secret_hash=obs.secret_hash,
        example=obs.example,
        owasp=obs.owasp,
        cwe=obs.cwe,
        package=obs.package,
        version=obs.version,
        fixed_in=obs.fixed_in,
        aliases=obs.aliases,
        detail=obs.detail,
        first_seen=now,
        last_seen=now,
        first_scan=scan,
        last_scan=scan,
        status=Finding.ACCEPTED if obs.exception_id else Finding.OPEN,
        exception_id=obs.exception_id,
        accepted_until=obs.accepted_until,
    )


def expire_acceptances(now: datetime) -> int:
    """Accepted risks past their expiry are open again (with a note saying so)."""
    due = list(Finding.objects.filter(status=Finding.ACCEPTED, accepted_until__lte=now))
    FindingComment.objects.bulk_create(
        [
            FindingComment(
                finding=f,
                text=f"Risk acceptance expired on {f.accepted_until:%Y-%m-%d}: open again.",
                status_from="accepted",
                status_to="open",
            )
            for f in due
        ]
    )
    return Finding.objects.filter(pk__in=[f.pk for f in due]).update(status=Finding.OPEN, accepted_until=None, exception=None)


def triage(
    finding: Finding, author, *, status: str | None, assignee: str | None, accepted_until: datetime | None, comment: str, now: datetime
) -> Finding:
    """Change a finding's status and/or assignee, with a comment. Accepting a risk needs an expiry and a reason."""
    changes = []
    old_status = finding.status
    if status and status != finding.status:
        if status == Finding.ACCEPTED:
            if accepted_until is None or accepted_until <= now:
                raise ScanError("Accepting a risk needs an expiry date in the future (accepted_until).")
            if accepted_until > now + timedelta(days=MAX_ACCEPT_DAYS):
                raise ScanError(f"A risk can be accepted for at most {MAX_ACCEPT_DAYS} days; review it again then.")
            if not comment.strip():
                raise ScanError("Say why the risk is accepted (comment).")
            finding.accepted_until = accepted_until
        elif status in (Finding.FALSE_POSITIVE,) and not comment.strip():
            raise ScanError("Say why this is a false positive (comment).")
        else:
            finding.accepted_until = None
        finding.status = status
        changes.append("status")
    elif status == Finding.ACCEPTED and accepted_until and accepted_until != finding.accepted_until:
        finding.accepted_until = accepted_until
        changes.append("accepted_until")
    if assignee is not None:
        user = None
        if assignee:
            user = get_user_model().objects.filter(username=assignee, is_active=True).first()
            if user is None:
                raise ScanError(f"There is no active user named {assignee!r} to assign.")
        if user != finding.assignee:
            finding.assignee = user
            changes.append("assignee")
    if not changes and not comment.strip():
        raise ScanError("Nothing to change: give a status, an assignee or a comment.")
    with transaction.atomic():
        finding.save(update_fields=["status", "accepted_until", "assignee"])
        text = comment.strip()
        if "assignee" in changes:
            text = (text + "\n" if text else "") + f"Assigned to {finding.assignee.username if finding.assignee else 'nobody'}."
        FindingComment.objects.create(
            finding=finding,
            author=author,
            text=text[:4000],
            status_from=old_status if "status" in changes else "",
            status_to=finding.status if "status" in changes else "",
        )
    return finding
