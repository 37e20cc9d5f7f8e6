"""The local OSV advisory set: import OSV JSON (single records, lists,
directories or an ecosystem's `all.zip` export) and match dependencies.

Range semantics follow the OSV schema's evaluation: events sorted by version
("0" first); `introduced` starts an affected span, `fixed` ends it (that
version is safe), `last_affected` ends it after that version, `limit` caps
everything. Versions compare with PEP 440 (`packaging`) for PyPI and with
Semantic Versioning for npm; `affected[].versions` lists match exactly.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.db import transaction
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..models import Advisory, AffectedPackage
from .cvss import severity_of
from .lockfiles import NPM, PYPI, Dependency
from .semver import InvalidSemver, Semver

MAX_RECORD_BYTES = 5 << 20


def normalise_name(ecosystem: str, name: str) -> str:
    return canonicalize_name(name) if ecosystem == PYPI else name.lower()


def parse_version(ecosystem: str, text: str):
    try:
        return Version(text) if ecosystem == PYPI else Semver(text)
    except (InvalidVersion, InvalidSemver):
        return None


# --- import ----------------------------------------------------------------------------


def read_records(path: Path) -> Iterator[dict]:
    """OSV records from a .json file (a record or a list), a .zip export, or a directory of them."""
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            if child.suffix in (".json", ".zip"):
                yield from read_records(child)
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            yield from records_in_zip(zf)
    else:
        yield from _records_in(json.loads(path.read_text("utf-8")))


def records_in_zip(zf: zipfile.ZipFile) -> Iterator[dict]:
    """The records of an OSV export: one `<id>.json` per record."""
    for info in zf.infolist():
        if info.filename.endswith(".json") and info.file_size <= MAX_RECORD_BYTES:
            yield from _records_in(json.load(io.TextIOWrapper(zf.open(info), "utf-8")))


def _records_in(data) -> Iterator[dict]:
    for record in data if isinstance(data, list) else [data]:
        if isinstance(record, dict) and record.get("id"):
            yield record


def parse_time(text: str | None):
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def source_of(record: dict) -> str:
    """The feed a record belongs to: the ecosystem of its first affected package ("Debian:12" -> "Debian")."""
    for aff in record.get("affected") or []:
        ecosystem = ((aff.get("package") or {}).get("ecosystem") or "").split(":")[0]
        if ecosystem:
            return ecosystem
    return ""


@dataclass
class ImportStats:
    records: int = 0
    affected: int = 0
    skipped: int = 0
    newest: datetime | None = None


def _rows(record: dict, source: str) -> tuple[Advisory, list[AffectedPackage]]:
    level, vector, score = severity_of(record)
    advisory = Advisory(
        id=record["id"][:100],
        summary=record.get("summary", "")[:2000],
        details=record.get("details", "")[:20000],
        aliases=[a for a in record.get("aliases") or [] if isinstance(a, str)],
        severity=level,
        cvss_vector=vector[:200],
        cvss_score=score,
        cwe_ids=(record.get("database_specific") or {}).get("cwe_ids") or [],
        published=parse_time(record.get("published")),
        modified=parse_time(record.get("modified")),
        withdrawn=parse_time(record.get("withdrawn")),
        references=[ref.get("url") for ref in record.get("references") or [] if ref.get("url")][:20],
        source=source,
    )
    rows = []
    for aff in record["affected"]:
        package = aff.get("package") or {}
        ecosystem = package.get("ecosystem", "").split(":")[0]
        if not package.get("name") or not ecosystem:
            continue
        ranges = [r for r in aff.get("ranges") or [] if r.get("type") in ("ECOSYSTEM", "SEMVER")]
        name = normalise_name(ecosystem, package["name"])
        rows.append(AffectedPackage(advisory=advisory, ecosystem=ecosystem, name=name, ranges=ranges, versions=aff.get("versions") or []))
    return advisory, rows


def _insert(records: list[dict], stats: ImportStats, source: str | None) -> None:
    """Insert a batch, replacing the records of the same ids."""
    batch = [r for r in records if r.get("affected")]
    stats.skipped += len(records) - len(batch)
    Advisory.objects.filter(id__in=[r["id"][:100] for r in batch]).delete()
    advisories, affected = {}, []
    for record in batch:
        advisory, rows = _rows(record, source if source is not None else source_of(record))
        advisories[advisory.id] = advisory
        affected.extend(rows)
        if advisory.modified and (stats.newest is None or advisory.modified > stats.newest):
            stats.newest = advisory.modified
    Advisory.objects.bulk_create(advisories.values(), batch_size=500)
    AffectedPackage.objects.bulk_create(affected, batch_size=1000)
    stats.records += len(advisories)
    stats.affected += len(affected)


def _batched(records: Iterable[dict], size: int) -> Iterator[list[dict]]:
    chunk: list[dict] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def import_records(records: Iterable[dict], batch: int = 500) -> ImportStats:
    """Insert or replace advisories (by id), each batch in its own transaction; each record's feed is its ecosystem."""
    stats = ImportStats()
    for chunk in _batched(records, batch):
        with transaction.atomic():
            _insert(chunk, stats, None)
    return stats


@transaction.atomic
def replace_source(source: str, records: Iterable[dict], batch: int = 500) -> ImportStats:
    """Atomic swap of one feed: its old advisories go and the new ones come in one transaction.

    Any error while reading the records (a corrupt archive, bad JSON) rolls it all back: the old data stays."""
    stats = ImportStats()
    Advisory.objects.filter(source=source).delete()
    for chunk in _batched(records, batch):
        _insert(chunk, stats, source)
    if not stats.records:
        raise ValueError(f"the {source} export holds no advisory")
    return stats


# --- matching --------------------------------------------------------------------------

_EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")


def _events(ecosystem: str, events: list[dict]) -> list[tuple[str, object]]:
    parsed = []
    for event in events:
        for kind in _EVENT_KINDS:
            if kind in event:
                value = event[kind]
                version = None if (kind == "introduced" and value == "0") else parse_version(ecosystem, value)
                if version is not None or value == "0":
                    parsed.append((kind, version, value))
    parsed.sort(key=lambda e: (0,) if e[1] is None else (1, e[1]))
    return parsed


def in_range(ecosystem: str, version, events: list[dict]) -> tuple[bool, str]:
    """(affected?, the `fixed` version that ends the span the version is in, or "")."""
    parsed = _events(ecosystem, events)
    if any(kind == "limit" and version >= v for kind, v, _ in parsed):
        return False, ""
    affected = False
    for kind, v, _ in parsed:
        if kind == "introduced" and (v is None or version >= v):
            affected = True
        elif (kind == "fixed" and version >= v) or (kind == "last_affected" and version > v):
            affected = False
    return affected, _fix_after(parsed, version) if affected else ""


def _fix_after(parsed: list, version) -> str:
    return next((raw for kind, v, raw in parsed if kind == "fixed" and v > version), "")


def is_affected(dep: Dependency, affected: AffectedPackage) -> tuple[bool, str]:
    """Whether this installed version is affected, and the version that fixes it ("" if none is known)."""
    version = parse_version(dep.ecosystem, dep.version)
    if version is not None:
        for r in affected.ranges:
            hit, fix = in_range(dep.ecosystem, version, r.get("events") or [])
            if hit:
                return True, fix
    listed = dep.version in affected.versions or (
        version is not None and any(parse_version(dep.ecosystem, v) == version for v in affected.versions)
    )
    if not listed:
        return False, ""
    fixes = [_fix_after(_events(dep.ecosystem, r.get("events") or []), version) for r in affected.ranges] if version else []
    return True, next((f for f in fixes if f), "")


@dataclass(frozen=True)
class Vulnerability:
    dependency: Dependency
    advisory: Advisory
    fixed_in: str


def audit(dependencies: Iterable[Dependency]) -> list[Vulnerability]:
    """Every (dependency, advisory) pair where the installed version is affected."""
    deps = list(dependencies)
    by_key: dict[tuple[str, str], list[Dependency]] = {}
    for dep in deps:
        by_key.setdefault((dep.ecosystem, normalise_name(dep.ecosystem, dep.name)), []).append(dep)
    found: list[Vulnerability] = []
    for ecosystem in (PYPI, NPM):
        names = [name for eco, name in by_key if eco == ecosystem]
        if not names:
            continue
        rows = AffectedPackage.objects.filter(ecosystem=ecosystem, name__in=names, advisory__withdrawn__isnull=True).select_related(
            "advisory"
        )
        for row in rows:
            for dep in by_key[(ecosystem, row.name)]:
                hit, fix = is_affected(dep, row)
                if hit:
                    found.append(Vulnerability(dep, row.advisory, fix))
    return found


# --- one finding per vulnerability -----------------------------------------------------

ID_PREFERENCE = ("CVE-", "GHSA-", "PYSEC-")
RATED = ("critical", "high", "medium", "low", "info")


@dataclass
class Merged:
    """One vulnerability of one installed package, however many databases (and ids) describe it."""

    dependency: Dependency
    advisories: list[Advisory]
    id: str
    aliases: list[str]
    severity: str
    score: float | None
    fixed_in: str


def _preferred(ids: set[str]) -> str:
    return min(ids, key=lambda i: (next((n for n, p in enumerate(ID_PREFERENCE) if i.startswith(p)), len(ID_PREFERENCE)), i))


def _group(vulns: list[Vulnerability]) -> list[list[Vulnerability]]:
    """Advisories that share an id or an alias are one vulnerability (union-find over the ids)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for v in vulns:
        for alias in v.advisory.aliases:
            parent[find(alias)] = find(v.advisory.id)
    groups: dict[str, list[Vulnerability]] = {}
    for v in vulns:
        groups.setdefault(find(v.advisory.id), []).append(v)
    return list(groups.values())


def merge_aliases(vulns: list[Vulnerability]) -> list[Merged]:
    """Per installed package, the advisories of one vulnerability (CVE, GHSA, PYSEC...) merged into one."""
    by_dep: dict[Dependency, list[Vulnerability]] = {}
    for v in vulns:
        by_dep.setdefault(v.dependency, []).append(v)
    merged = []
    for dep, found in by_dep.items():
        for group in _group(found):
            advisories = [v.advisory for v in group]
            ids = {a.id for a in advisories} | {alias for a in advisories for alias in a.aliases}
            primary = _preferred(ids)
            # the most severe of their ratings (a CVSS score's, or a database's own where a record has no vector)
            rated = [a.severity for a in advisories if a.severity in RATED]
            severity = min(rated, key=RATED.index) if rated else "unknown"
            score = max((a.cvss_score for a in advisories if a.cvss_score is not None), default=None)
            fixes = [f for f in (v.fixed_in for v in group) if f and parse_version(dep.ecosystem, f) is not None]
            fixed_in = max(fixes, key=lambda f: parse_version(dep.ecosystem, f)) if fixes else ""
            merged.append(Merged(dep, advisories, primary, sorted(ids - {primary}), severity, score, fixed_in))
    return merged
