"""Security operations: scans (secrets, dependencies, source, images, buckets) run as
jobs; findings are listed, triaged and exported through the same gateway."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Literal
from uuid import UUID

from django.conf import settings
from django.utils import timezone
from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from apps.core.jobs import Context
from apps.core.operations import Risk, operation
from apps.infrastructure.services.images import IMAGE_REF_RE
from apps.storage.client import connect
from apps.storage.services.common import BucketRef, Prefix

from . import advisory_services, findings, images, peers, sarif, scanning, verify_services  # noqa: F401 (their operations register)
from .errors import ScanError
from .models import Finding, ScanRoot, Upload
from .queries import FindingFilter, FindingOut, filtered
from .runs import ScanOutput, run_scan
from .sources import Tree, clean_relative, resolve_in_root, root_tree, upload_tree
from .upload_services import STAGED_DESCRIPTION, StagedUpload, admit_upload

SCAN_OPERATIONS = (
    "security.scan_secrets",
    "security.audit_dependencies",
    "security.scan_source",
    "security.scan_image",
    "security.scan_bucket",
)


# Set by the console only (admit_upload claims `staged` into it; a caller's own is refused), hidden from agents.
UploadId = SkipJsonSchema[UUID | None]


class SourceInput(BaseModel):
    staged: StagedUpload | None = Field(None, description=f"{STAGED_DESCRIPTION} A file, .zip or .tar.gz.")
    upload_id: UploadId = None
    root: str = Field("", max_length=60, description="Name of an admin-configured scan root (a directory on the console's server).")
    path: str = Field("", max_length=500, description="Path inside the scan root ('' = the whole root). Relative; '..' is refused.")

    @model_validator(mode="after")
    def one_source(self):
        if bool(self.staged or self.upload_id) == bool(self.root):
            raise ValueError("Give either staged (an uploaded file) or root (with an optional path), not both or neither.")
        try:
            clean_relative(self.path)
        except ScanError as exc:
            raise ValueError(exc.message) from None
        return self

    def describe(self) -> str:
        return f"{self.root}:{self.path or '/'}" if self.root else f"upload {self.staged.name if self.staged else self.upload_id}"


class AllowLists(BaseModel):
    allow_paths: list[str] = Field(default_factory=list, description="Globs of paths never reported (e.g. tests/fixtures/*).")
    allow_patterns: list[str] = Field(default_factory=list, description="Regexes of secret values never reported.")

    @field_validator("allow_patterns")
    @classmethod
    def patterns_compile(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a valid regex: {exc}") from None
        return value


class ScanSecretsInput(AllowLists, SourceInput):
    history: bool = Field(
        False, description="Scan every blob of the git history (root/path must be a git repository) instead of the files."
    )

    @model_validator(mode="after")
    def history_of_a_root(self):  # refused at the call, before an upload is claimed for nothing
        if self.history and not self.root:
            raise ValueError("History scans read a repository under a scan root: give root (and path), not an upload.")
        return self


class BucketSource(BucketRef):
    prefix: Prefix = ""


class ScanBucketInput(AllowLists, BucketSource):
    def describe(self) -> str:
        return f"{self.connection}:{self.bucket}/{self.prefix}"


class AuditDependenciesInput(SourceInput):
    ecosystems: list[Literal["PyPI", "npm"]] = Field(default_factory=lambda: ["PyPI", "npm"], description="Which lockfiles to check.")


class ScanImageInput(BaseModel):
    staged: StagedUpload | None = Field(None, description=f"{STAGED_DESCRIPTION} A `docker save` archive or container export tar.")
    upload_id: UploadId = None
    environment: str = Field(
        "", max_length=40, description="Or an infrastructure environment (see infrastructure.environments): read the image from its engine."
    )
    reference: str = Field(
        "",
        max_length=300,
        description="With environment: the image to scan (repository:tag, repository@sha256:digest or an image id). "
        "With staged: the reference the archive came from, e.g. registry/app:1.4 (checked for 'latest').",
    )

    @model_validator(mode="after")
    def one_source(self):
        if bool(self.staged or self.upload_id) == bool(self.environment):
            raise ValueError("Give either staged (an uploaded archive) or environment and reference (an image on its engine).")
        if self.environment and not re.match(IMAGE_REF_RE, self.reference):
            raise ValueError("Give the image to read from the environment's engine as reference: repository:tag, @sha256 digest or id.")
        return self

    def describe(self) -> str:
        if self.environment:
            return f"{self.environment}/{self.reference}"
        return self.reference or f"upload {self.staged.name if self.staged else self.upload_id}"


def _tree(ctx: Context, params: SourceInput):
    def target_of(scratch: Path) -> Tree:
        return upload_tree(params.upload_id, ctx.user, scratch) if params.upload_id else root_tree(params.root, params.path)

    return target_of


@operation("security.scan_secrets", risk=Risk.WRITE, long=True, admit=admit_upload, target=lambda p: p.describe())
def scan_secrets(ctx: Context, params: ScanSecretsInput) -> ScanOutput:
    """Scan files for secrets (98 rules: cloud keys, tokens, private keys, JWTs, database URLs, passwords, high-entropy strings).

    Source: an upload (file or zip/tar.gz archive) or a path under a scan root; with history=true the git history of
    that repository (every blob reachable from any ref, once). Findings show a masked preview and a keyed fingerprint,
    never the secret. Lines marked `secret-scan:ignore` (or `pragma: allowlist secret`), allow-listed paths/patterns
    and entries of a `.security-baseline.json` at the top of the tree are not reported. Runs as a job.
    """
    if params.history:

        def history_target(scratch: Path) -> Tree:
            root, repo = resolve_in_root(params.root, params.path)
            return Tree(repo, f"git:{root.name}/{clean_relative(params.path)}".rstrip("/"))

        def work(tree: Tree, progress):
            return scanning.secrets_in_history(tree.base, scanning.make_scanner(params.allow_paths, params.allow_patterns), progress)

        return run_scan(ctx, "secrets", history_target, work, narrowed=_narrowed(params))

    def work(tree: Tree, progress):
        scanner = scanning.make_scanner(params.allow_paths, params.allow_patterns, scanning.tree_baseline(tree))
        return scanning.secrets_in_tree(tree, scanner, progress)

    return run_scan(ctx, "secrets", _tree(ctx, params), work, narrowed=_narrowed(params))


def _narrowed(params) -> bool:
    """The caller gave allow-lists of their own: the scan does not say a guarded finding is gone."""
    return bool(params.allow_paths or params.allow_patterns)


@operation("security.audit_dependencies", risk=Risk.WRITE, long=True, admit=admit_upload, target=lambda p: p.describe())
def audit_dependencies(ctx: Context, params: AuditDependenciesInput) -> ScanOutput:
    """Check the locked dependencies against the local OSV advisory set (PyPI and npm).

    Reads pinned requirements*.txt, poetry.lock, pdm.lock, Pipfile.lock, uv.lock, package-lock.json (v1-v3), yarn.lock
    and pnpm-lock.yaml found in the upload or scan-root path; every other lockfile found is named in `unread_lockfiles`.
    One finding per vulnerable package and vulnerability, however many ids it has (CVE, GHSA, PYSEC merged), with a
    severity from its CVSS v2/v3/v4 vector or the database's rating, and the version that fixes it. Advisories ship with
    the console and are refreshed by security.sync_advisories. Scoped exceptions (security.add_exception) apply. Runs as a job.
    """
    work = lambda tree, progress: scanning.dependencies_in_tree(tree, set(params.ecosystems), progress)  # noqa: E731
    return run_scan(ctx, "dependencies", _tree(ctx, params), work)


@operation("security.scan_source", risk=Risk.WRITE, long=True, admit=admit_upload, target=lambda p: p.describe())
def scan_source(ctx: Context, params: SourceInput) -> ScanOutput:
    """Static checks of Python source: bandit plus Django deployment checks (DEBUG on, wildcard ALLOWED_HOSTS,
    hard-coded SECRET_KEY, insecure cookies, csrf_exempt, raw SQL built with string formatting), each with its
    OWASP Top 10 (2021) category. Nothing from the scanned code is imported or run. Runs as a job."""
    return run_scan(ctx, "source", _tree(ctx, params), scanning.source_in_tree)


@operation("security.scan_image", risk=Risk.WRITE, long=True, admit=admit_upload, target=lambda p: p.describe())
def scan_image(ctx: Context, params: ScanImageInput) -> ScanOutput:
    """Check a container image: its config (runs as root, 'latest' tag, secrets in ENV or labels, no healthcheck,
    privileged ports) and every file of every layer for secrets (a secret deleted by a later layer is still reported).

    Source: an image on an infrastructure environment's engine (environment + reference; inspected through
    infrastructure.image, so the infrastructure permissions apply, then exported by id and streamed), or an
    uploaded `docker save` archive / container export (staged). Nothing is unpacked to disk. Runs as a job."""
    if params.environment:
        info = peers.inspect_image(ctx, params.environment, params.reference)

        def engine_work(tree: Tree, progress):
            ctx.log(f"{params.reference} is {info.id} ({info.size >> 20} MB, tags: {', '.join(info.tags) or 'none'})")
            result = peers.scan_engine_image(info, params.reference, scanning.make_scanner(), progress)
            return scanning.image_observations(result)

        return run_scan(ctx, "image", lambda scratch: Tree(scratch, f"image:{params.describe()}"), engine_work)

    upload = Upload.objects.filter(pk=params.upload_id, uploaded_by=ctx.user).first() if ctx.user else None
    if upload is None or not upload.stored_path.exists():
        raise ScanError("That upload does not exist any more: upload the image archive again.")

    def target_of(scratch: Path) -> Tree:
        return Tree(upload.stored_path, f"image:{params.reference or upload.name}")

    def work(tree: Tree, progress):
        scanner = scanning.make_scanner()
        with open(tree.base, "rb") as raw:
            stream = scanning.ReadProgress(raw, upload.size, progress)
            result = images.scan_tar_stream(stream, scanner, params.reference)
        return scanning.image_observations(result)

    return run_scan(ctx, "image", target_of, work)


@operation("security.scan_bucket", risk=Risk.WRITE, long=True, target=lambda p: p.describe())
def scan_bucket(ctx: Context, params: ScanBucketInput) -> ScanOutput:
    """Scan the objects of a storage bucket (under an optional prefix) for secrets, with the same rules as files.

    Objects are listed page by page and streamed through the storage connection; objects above SECURITY_MAX_FILE_MB,
    binary ones (by suffix or content), lockfiles and keys matching `allow_paths` are skipped and counted. Findings
    are located as s3://bucket/key with a masked preview, never the secret. Needs the permissions of storage.list
    and storage.fetch (reading object bytes) besides this one's. Runs as a job."""
    peers.require_bucket_reads(ctx.actor)
    s3 = connect(params.connection)

    def work(tree: Tree, progress):
        scanner = scanning.make_scanner(params.allow_paths, params.allow_patterns)
        return peers.secrets_in_bucket(s3, params.bucket, params.prefix, scanner, progress)

    return run_scan(ctx, "secrets", lambda scratch: Tree(scratch, f"s3:{params.describe()}"), work, narrowed=_narrowed(params))


# --- findings --------------------------------------------------------------------------


class FindingsInput(FindingFilter):
    offset: int = Field(0, ge=0)
    limit: int = Field(50, ge=1, le=1000)


class FindingsOutput(BaseModel):
    total: int
    findings: list[FindingOut]


@operation("security.findings", risk=Risk.READ, target=lambda p: p.describe())
def list_findings(ctx: Context, params: FindingsInput) -> FindingsOutput:
    """List security findings, most severe first, filtered by status (default: open and triaged), severity, kind
    (secrets, dependencies, source, image), target, rule, assignee or text. Secrets appear masked only."""
    findings.expire_acceptances(timezone.now())
    qs = filtered(params)
    total = qs.count()
    page = qs.select_related("assignee")[params.offset : params.offset + params.limit]
    return FindingsOutput(total=total, findings=[FindingOut.of(f) for f in page])


class TriageInput(BaseModel):
    finding_id: int = Field(description="The finding's id.")
    status: Literal["open", "triaged", "accepted", "false_positive", "fixed"] | None = Field(None, description="New status.")
    assignee: str | None = Field(None, max_length=150, description="Username to assign; '' to unassign; omit to keep.")
    accepted_until: datetime | None = Field(None, description="For status 'accepted': when the acceptance expires (at most a year).")
    comment: str = Field("", max_length=4000, description="Why (required to accept a risk or call a false positive).")


# What takes a finding out of the gate: a person marking it fixed is one of them (a scan that no
# longer sees it marks it fixed by itself, and one that sees it again reopens it).
DISMISSING = (Finding.ACCEPTED, Finding.FALSE_POSITIVE, Finding.FIXED)


def triage_scope(params: TriageInput) -> str | None:
    """Accepting, dismissing or marking fixed a guarded finding takes a second person, as a critical exception does
    (else triage would be the way around that guard); every other triage needs no approval."""
    guarded = Finding.objects.filter(findings.GUARDED, pk=params.finding_id).exists()
    return "severity:critical" if params.status in DISMISSING and guarded else None


def plan_triage(ctx: Context | None, params: TriageInput) -> dict:
    """The finding as it is and what the triage makes of it (a pure read): approvers see which finding and why."""
    finding = Finding.objects.filter(pk=params.finding_id).first()
    if finding is None:
        raise ScanError(f"There is no finding #{params.finding_id}.")
    status = params.status or finding.status
    what = f"{finding.severity} {finding.rule} in {finding.package or finding.path or finding.target}"
    return {
        "summary": f"Set finding #{finding.pk} ({what}) from {finding.status} to {status}.",
        "finding": finding.pk,
        "from": finding.status,
        "status": status,
        "accepted_until": params.accepted_until.isoformat() if params.accepted_until else None,
        "assignee": params.assignee,
        "comment": params.comment,
        "links": {f"finding #{finding.pk}": finding.get_absolute_url()},
    }


@operation(
    "security.triage_finding",
    risk=Risk.RISKY,
    permission="security.triage_findings",
    approval_scope=triage_scope,
    guard=True,  # dismissing a guarded finding lowers the gate: someone else approves it whatever the policy rows say
    planner=plan_triage,
    target=lambda p: f"finding {p.finding_id}",
)
def triage_finding(ctx: Context, params: TriageInput) -> FindingOut:
    """Triage a finding: set its status (open, triaged, accepted risk with an expiry, false positive, fixed), its
    assignee, and add a comment. Accepted risks reopen by themselves when they expire. Accepting or calling a false
    positive, or marking fixed, a critical vulnerability or a secret verified live needs approval (scope severity:critical)."""
    finding = Finding.objects.filter(pk=params.finding_id).first()
    if finding is None:
        raise ScanError(f"There is no finding #{params.finding_id}.")
    accepted_until = params.accepted_until
    if accepted_until is not None and timezone.is_naive(accepted_until):
        accepted_until = timezone.make_aware(accepted_until)
    findings.triage(
        finding,
        ctx.user,
        status=params.status,
        assignee=params.assignee,
        accepted_until=accepted_until,
        comment=params.comment,
        now=timezone.now(),
    )
    return FindingOut.of(finding)


class ExportSarifOutput(BaseModel):
    results: int
    sarif: dict = Field(description="A SARIF 2.1.0 log (valid against the OASIS schema).")


@operation("security.export_sarif", risk=Risk.READ, target=lambda p: p.describe())
def export_sarif(ctx: Context, params: FindingFilter) -> ExportSarifOutput:
    """Export findings (same filters as security.findings) as a SARIF 2.1.0 log for code-scanning tools:
    one run per scanner kind, rules with help text, masked snippets, fingerprints and OWASP/CWE tags."""
    rows = list(filtered(params).select_related("assignee", "exception")[: settings.SECURITY_EXPORT_MAX])
    return ExportSarifOutput(results=len(rows), sarif=sarif.build(rows))


# --- scan roots --------------------------------------------------------------------------


class ScanRootInput(BaseModel):
    name: str = Field(max_length=60, pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Short name people pick, e.g. 'repos'.")
    path: str = Field(max_length=500, description="Absolute path of an existing directory on the console's server.")
    description: str = Field("", max_length=200)

    @field_validator("path")
    @classmethod
    def absolute_dir(cls, value: str) -> str:
        path = Path(value)
        if not path.is_absolute() or ".." in path.parts:
            raise ValueError("Give an absolute path without '..'.")
        if not path.is_dir():
            raise ValueError("No such directory on the console's server.")
        return str(path.resolve())


class ScanRootOut(BaseModel):
    name: str
    path: str
    description: str


@operation("security.set_scan_root", risk=Risk.WRITE, permission="security.manage_scan_roots", target=lambda p: p.name)
def set_scan_root(ctx: Context, params: ScanRootInput) -> ScanRootOut:
    """Add or change a scan root: a server directory under which scans may read (admins only)."""
    root, _ = ScanRoot.objects.update_or_create(name=params.name, defaults={"path": params.path, "description": params.description})
    return ScanRootOut(name=root.name, path=root.path, description=root.description)


class RemoveScanRootInput(BaseModel):
    name: str = Field(max_length=60)


class RemoveScanRootOutput(BaseModel):
    removed: bool


@operation("security.remove_scan_root", risk=Risk.WRITE, permission="security.manage_scan_roots", target=lambda p: p.name)
def remove_scan_root(ctx: Context, params: RemoveScanRootInput) -> RemoveScanRootOutput:
    """Remove a scan root; scans can no longer read under it (its findings stay)."""
    deleted, _ = ScanRoot.objects.filter(name=params.name).delete()
    return RemoveScanRootOutput(removed=bool(deleted))
