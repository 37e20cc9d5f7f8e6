"""Scoped, expiring exceptions to the dependency audit.

An exception names one vulnerability (by any of its ids) in one package, for
some versions (`==2.30.0 || >=3.0,<3.1`: alternatives of comparisons, all of
which must hold) and optionally some lockfile paths (a glob). A finding it
covers is "accepted" until the exception expires; a finding of another
version, path or vulnerability is not covered and stays open. When the
exception expires the finding opens again (findings.expire_acceptances).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from datetime import datetime

from .deps import lockfiles, osv
from .errors import ScanError
from .findings import Observation
from .models import SEVERITY_RANK, Advisory, AdvisoryException, Finding

COMPARISON = re.compile(r"^(==|!=|<=|>=|<|>)\s*([^\s,|]+)$")


def parse_versions(ecosystem: str, text: str) -> list[list[tuple[str, object]]]:
    """`==1.0 || >=2.0,<2.3` -> alternatives of (operator, version); ScanError says what is wrong."""
    alternatives = []
    for alternative in text.split("||"):
        clauses = []
        for clause in alternative.split(","):
            m = COMPARISON.match(clause.strip())
            version = osv.parse_version(ecosystem, m.group(2)) if m else None
            if version is None:
                raise ScanError(f"{clause.strip()!r} is not a comparison with a {ecosystem} version, like '==2.30.0' or '<2.31'.")
            clauses.append((m.group(1), version))
        alternatives.append(clauses)
    return alternatives


_OPS = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def versions_match(ecosystem: str, spec: str, version: str) -> bool:
    parsed = osv.parse_version(ecosystem, version)
    if parsed is None:
        return False
    return any(all(_OPS[op](parsed, v) for op, v in alternative) for alternative in parse_versions(ecosystem, spec))


@dataclass
class Vulnerability:
    """What an exception would name: the package's advisories sharing the given id or alias."""

    ids: list[str]
    severity: str


def resolve(ecosystem: str, package: str, vulnerability: str) -> Vulnerability | None:
    name = osv.normalise_name(ecosystem, package)
    advisories = list(Advisory.objects.filter(affected__ecosystem=ecosystem, affected__name=name).distinct())
    wanted = vulnerability.strip().upper()
    group = {a.id: a for a in advisories if wanted in {a.id.upper(), *(x.upper() for x in a.aliases)}}
    # aliases of aliases: a PYSEC record naming the CVE, a GHSA naming the same CVE
    ids = {i.upper() for a in group.values() for i in (a.id, *a.aliases)}
    for a in advisories:
        if a.id not in group and ids & {a.id.upper(), *(x.upper() for x in a.aliases)}:
            group[a.id] = a
    if not group:
        return None
    all_ids = sorted({i for a in group.values() for i in (a.id, *a.aliases)})
    rated = [a.severity for a in group.values() if a.severity in SEVERITY_RANK]
    return Vulnerability(all_ids, min(rated, key=SEVERITY_RANK.get) if rated else "unknown")


def covers(exc: AdvisoryException, ecosystem: str, package: str, version: str, path: str, ids: set[str], now: datetime) -> bool:
    return (
        exc.expires_at > now
        and exc.ecosystem == ecosystem
        and exc.package == osv.normalise_name(ecosystem, package)
        and bool({i.upper() for i in exc.aliases} & {i.upper() for i in ids})
        and (not exc.path or fnmatch.fnmatch(path, exc.path))
        and versions_match(ecosystem, exc.versions, version)
    )


def active(now: datetime) -> list[AdvisoryException]:
    return list(AdvisoryException.objects.filter(expires_at__gt=now))


def apply(observations: list[Observation], now: datetime) -> None:
    """Mark the observations an exception covers (they become accepted findings until it expires)."""
    exceptions = active(now)
    for obs in observations if exceptions else ():
        ecosystem = lockfiles.ecosystem_of_manifest(obs.path)
        for exc in exceptions:
            if covers(exc, ecosystem, obs.package, obs.version, obs.path, {obs.rule, *obs.aliases}, now):
                obs.exception_id, obs.accepted_until = exc.pk, exc.expires_at
                break


def accept_findings(exc: AdvisoryException, now: datetime) -> int:
    """Findings open now that the new exception covers: accepted at once, not at the next scan."""
    rows = Finding.objects.filter(kind="dependencies", status__in=Finding.ACTIVE, exception__isnull=True).only(
        "pk", "package", "version", "path", "rule", "aliases"
    )
    covered = [
        f.pk
        for f in rows.iterator()
        if covers(exc, lockfiles.ecosystem_of_manifest(f.path), f.package, f.version, f.path, {f.rule, *f.aliases}, now)
    ]
    return Finding.objects.filter(pk__in=covered).update(status=Finding.ACCEPTED, accepted_until=exc.expires_at, exception=exc)
