"""The scanners run over a source: each turns what it sees into Observations,
reporting progress as it goes. Called by the operations in services.py."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from . import exceptions, gitscan, owasp, sast
from .deps import feeds, lockfiles, osv
from .errors import ScanError
from .findings import Observation
from .images import ImageScan
from .models import Finding
from .secretscan import baseline
from .secretscan.engine import Policy, SecretHit, SecretScanner
from .sources import Tree, walk

MAX_COMMIT_LOOKUPS = 200
LIVE = "live"  # Finding.verification of a secret the provider accepted
LOCKFILE_NAMES = (
    "requirements*.txt",
    "poetry.lock",
    "pdm.lock",
    "Pipfile.lock",
    "uv.lock",
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
)


def fingerprint_key() -> bytes:
    key = settings.SECURITY_FINGERPRINT_KEY or f"secret-fingerprint:{settings.SECRET_KEY}"
    return hashlib.sha256(key.encode()).digest()


def live_fingerprints() -> frozenset[str]:
    return frozenset(Finding.objects.filter(verification=LIVE).exclude(secret_hash="").values_list("secret_hash", flat=True))


def make_scanner(allow_paths=(), allow_patterns=(), baseline_entries=frozenset()) -> SecretScanner:
    policy = Policy(
        allow_paths=tuple(settings.SECURITY_ALLOW_PATHS) + tuple(allow_paths),
        allow_patterns=tuple(settings.SECURITY_ALLOW_PATTERNS) + tuple(allow_patterns),
        baseline=baseline_entries,
        # a baseline never silences a secret verified live (only a scan with a baseline needs to know them)
        live=live_fingerprints() if baseline_entries else frozenset(),
    )
    return SecretScanner(fingerprint_key(), policy=policy, max_file_bytes=settings.SECURITY_MAX_FILE_MB << 20)


@dataclass
class Progress:
    """Throttled progress: at most one report per percent or per half second."""

    report: Callable[[float, str], None]
    last: float = field(default=0.0)
    last_pct: int = -1

    def __call__(self, done: float, total: float, message: str) -> None:
        pct = int(100 * done / total) if total else 100
        now = time.monotonic()
        if pct != self.last_pct and (now - self.last >= 0.5 or pct - self.last_pct >= 5):
            self.last, self.last_pct = now, pct
            self.report(min(pct, 99), message)


class ReadProgress(io.RawIOBase):
    """A stream that reports how much of it was read (image tars: progress by bytes)."""

    def __init__(self, raw, total: int, progress: Progress):
        self.raw, self.total, self.progress, self.done = raw, total, progress, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.raw.readinto(buffer)
        self.done += n or 0
        self.progress(self.done, self.total, f"{self.done >> 20} of {self.total >> 20} MB read")
        return n


class ChunkStream(io.RawIOBase):
    """A readable stream over an iterator of byte chunks (an engine's export, an S3 object's body)."""

    def __init__(self, chunks: Iterator[bytes]):
        self.chunks, self.pending, self.offset = chunks, memoryview(b""), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while self.offset >= len(self.pending):
            chunk = next(self.chunks, None)
            if chunk is None:
                return 0
            self.pending, self.offset = memoryview(chunk), 0
        n = min(len(buffer), len(self.pending) - self.offset)
        buffer[:n] = self.pending[self.offset : self.offset + n]
        self.offset += n
        return n


@dataclass
class Outcome:
    observations: list[Observation] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)  # lockfiles found but not audited, each with why

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def secret_observation(hit: SecretHit, kind: str = "secrets", commit: str = "") -> Observation:
    return Observation(
        kind=kind,
        rule=hit.rule,
        title=("Example credential: " if hit.example else "") + hit.title,
        severity=hit.severity,
        path=hit.path,
        line=hit.line,
        commit=commit,
        preview=hit.preview,
        secret_hash=hit.fingerprint,
        example=hit.example,
        owasp=owasp.A07,
        cwe="CWE-798",
        identity=hit.fingerprint,
        detail="A documentation placeholder, not a live credential." if hit.example else "",
    )


def tree_baseline(tree: Tree) -> frozenset:
    path = tree.base / baseline.FILENAME
    if not tree.base.is_dir() or not path.is_file():
        return frozenset()
    try:
        return baseline.load(path)
    except baseline.BaselineError as exc:
        raise ScanError(str(exc)) from None


def secrets_in_tree(tree: Tree, scanner: SecretScanner, progress: Progress) -> Outcome:
    out = Outcome()
    files = list(walk(tree.base))
    total = sum(f.size for f in files) or 1
    done = 0
    for f in files:
        done += f.size
        reason = scanner.skip_reason(f.rel, f.size)
        if reason is None and f.rel != baseline.FILENAME:
            with open(f.path, "rb") as fh:
                hits = scanner.scan_stream(f.rel, fh)
            if hits is None:
                out.skip("binary")
            else:
                out.files += 1
                out.bytes += f.size
                out.observations.extend(secret_observation(h) for h in hits)
        elif reason:
            out.skip(reason)
        progress(done, total, f"{out.files} files scanned")
    return out


def secrets_in_history(repo: Path, scanner: SecretScanner, progress: Progress) -> Outcome:
    """Every blob reachable from any ref, scanned once; findings name the commit that added the blob."""
    out = Outcome()
    blobs, too_large = gitscan.blobs(repo, scanner.max_file_bytes)
    if too_large:
        out.skipped[f"larger than {scanner.max_file_bytes >> 20} MB"] = too_large
    wanted = []
    for blob in blobs:
        reason = scanner.skip_reason(blob.path, blob.size)
        if reason:
            out.skip(reason)
        else:
            wanted.append(blob)
    total = sum(b.size for b in wanted) or 1
    done, hits_by_blob = 0, []
    for blob, data in gitscan.contents(repo, wanted):
        done += blob.size
        hits = scanner.scan_stream(blob.path, io.BytesIO(data))
        if hits is None:
            out.skip("binary")
        else:
            out.files += 1
            out.bytes += blob.size
            if hits:
                hits_by_blob.append((blob, hits))
        progress(done, total, f"{out.files} blobs scanned")
    for i, (blob, hits) in enumerate(hits_by_blob):
        commit = gitscan.first_commit(repo, blob.sha) if i < MAX_COMMIT_LOOKUPS else ""
        out.observations.extend(secret_observation(h, commit=commit) for h in hits)
    out.notes.append(f"{len(blobs) + too_large} blobs in the history; each scanned once.")
    return out


def dependencies_in_tree(tree: Tree, ecosystems: set[str], progress: Progress) -> Outcome:
    out = Outcome()
    manifests, deps = [], []
    for f in walk(tree.base):
        kind, other = lockfiles.kind_of(f.rel), lockfiles.unread_ecosystem(f.rel)
        if kind and lockfiles.ECOSYSTEM_OF_KIND[kind] in ecosystems:
            manifests.append(f)
        elif kind:
            out.unread.append(f"{f.rel}: {lockfiles.ECOSYSTEM_OF_KIND[kind]} was not among the ecosystems asked for")
        elif other:
            out.unread.append(f"{f.rel}: {other} lockfiles are not audited")
    for i, f in enumerate(manifests, 1):
        try:
            parsed = lockfiles.parse(f.rel, f.path.read_text("utf-8", errors="replace"))
        except lockfiles.LockfileError as exc:
            out.unread.append(str(exc))
            continue
        out.files += 1
        out.bytes += f.size
        out.notes.extend(parsed.notes)
        deps.extend(parsed.dependencies)
        progress(i, len(manifests) + 1, f"{len(deps)} dependencies from {out.files} lockfiles")
    if not manifests:
        out.notes.append(f"No lockfile read ({', '.join(LOCKFILE_NAMES)}).")
    for vuln in osv.merge_aliases(osv.audit(deps)):
        out.observations.append(dependency_observation(vuln))
    exceptions.apply(out.observations, timezone.now())
    out.notes.extend(f"Not read: {why}" for why in out.unread)
    checked = f"{len(deps)} dependencies checked against {osv.Advisory.objects.count()} advisories."
    out.notes[:0] = [checked, *feeds.audit_notes(ecosystems, timezone.now())]  # first: a scan keeps its first 50 notes
    return out


def dependency_observation(vuln: osv.Merged) -> Observation:
    dep, first = vuln.dependency, vuln.advisories[0]
    summary = next((a.summary for a in vuln.advisories if a.summary), "") or vuln.id
    fix = f"fixed in {vuln.fixed_in}" if vuln.fixed_in else "no fixed version known"
    score = f", CVSS {vuln.score}" if vuln.score is not None else ""
    sources = ", ".join(a.id for a in vuln.advisories)
    return Observation(
        kind="dependencies",
        rule=vuln.id,
        title=f"{dep.name} {dep.version}: {summary} ({fix})"[:300],
        severity=vuln.severity,
        path=dep.manifest,
        package=dep.name,
        version=dep.version,
        fixed_in=vuln.fixed_in,
        aliases=vuln.aliases,
        owasp=owasp.A06,
        cwe=next((a.cwe_ids[0] for a in vuln.advisories if a.cwe_ids), ""),
        detail=f"Severity {vuln.severity}{score}. Advisories: {sources}. {first.details[:2000]}",
    )


def source_in_tree(tree: Tree, progress: Progress) -> Outcome:
    out = Outcome()
    files = [f for f in walk(tree.base) if f.rel.endswith(".py")]
    django_issues = []
    for f in files:
        django_issues.extend(sast.django_checks(f.rel, f.path.read_text("utf-8", errors="replace")))
        out.files += 1
        out.bytes += f.size
    bandit_issues = list(
        sast.run_bandit(tree.base, [f.path for f in files], lambda done: progress(done, len(files), f"bandit: {done} files"))
    )
    out.observations.extend(sast.merge(django_issues, bandit_issues))
    if not files:
        out.notes.append("No Python file found.")
    return out


def image_observations(result: ImageScan) -> Outcome:
    out = Outcome(files=result.files, bytes=result.bytes, skipped=dict(result.skipped))
    out.observations.extend(result.config_issues)
    out.observations.extend(secret_observation(h, kind="image") for h in result.hits)
    if result.config is None:
        out.notes.append("No image config in the archive (a filesystem export): only its files were checked.")
    return out
