"""The live-secret verification operation (see verify.py for the calls it makes)."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from pydantic import BaseModel, Field

from apps.core import ratelimit
from apps.core.errors import RateLimited
from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from . import scanning, verify
from .errors import ScanError
from .models import Finding, FindingComment
from .sources import resolve_in_root

AWS_PAIR = {"aws-access-key-id": "aws-secret-access-key", "aws-secret-access-key": "aws-access-key-id"}


class VerifySecretInput(BaseModel):
    finding_id: int = Field(description="A secret finding from a scan of a scan root (the file is read again for the call).")


class VerifySecretOutput(BaseModel):
    finding_id: int
    status: str = Field(description="live (the provider accepted it: now critical), invalid, or unknown.")
    identity: str = Field(description="Who the provider says the credential belongs to; never the credential.")
    detail: str


def _finding_and_family(finding_id: int) -> tuple[Finding, str]:
    finding = Finding.objects.filter(pk=finding_id, kind="secrets").first()
    if finding is None:
        raise ScanError(f"There is no secret finding #{finding_id}.")
    family = verify.FAMILY_OF_RULE.get(finding.rule)
    if family is None:
        raise ScanError(f"{finding.rule} secrets cannot be verified (families: github, slack, aws).")
    if not verify.enabled(family):
        raise ScanError(f"Verification of {family} secrets is off: an admin enables it in SECURITY_VERIFY_FAMILIES.")
    if not finding.target.startswith("root:") or not finding.path:
        raise ScanError("Only secrets found in a scan root's files can be verified (uploads are gone, history and images are not re-read).")
    return finding, family


def plan_verification(ctx: Context | None, params: VerifySecretInput) -> dict:
    """What will be called, with which finding's secret (a pure read; the secret itself is not in the plan)."""
    finding, family = _finding_and_family(params.finding_id)
    url = {
        "github": f"{settings.SECURITY_VERIFY_GITHUB_URL}/user",
        "slack": f"{settings.SECURITY_VERIFY_SLACK_URL}/auth.test",
        "aws": f"{settings.SECURITY_VERIFY_AWS_STS_URL} sts:GetCallerIdentity",
    }[family]
    return {
        "summary": f"Ask {family} whether the {finding.rule} of finding #{finding.pk} still works (read-only identity call).",
        "finding": finding.pk,
        "rule": finding.rule,
        "family": family,
        "file": f"{finding.target}:{finding.path}",
        "call": url,
        "links": {f"finding #{finding.pk}": finding.get_absolute_url()},
    }


def _secrets(finding: Finding) -> dict[str, str]:
    """The finding's secret (and, for AWS, the other half of its key pair) read again from its file, by fingerprint."""
    root_name, _, rel = finding.target[len("root:") :].partition("/")
    _, base = resolve_in_root(root_name, rel)
    path = base / finding.path if base.is_dir() else base
    scanner = scanning.make_scanner()
    if not path.is_file() or path.stat().st_size > scanner.max_file_bytes:
        raise ScanError(f"{finding.path} is not there any more: scan again.")
    found = scanner.secrets(finding.path, path.read_bytes())
    secret = next((s for rule, fp, s in found if fp == finding.secret_hash), None)
    if secret is None:
        raise ScanError(f"The secret is not in {finding.path} any more: scan again.")
    secrets = {finding.rule: secret}
    if finding.rule in AWS_PAIR:
        other = next((s for rule, _, s in found if rule == AWS_PAIR[finding.rule]), None)
        if other is None:
            raise ScanError("An AWS key is verified with its pair: the other half is not in the same file.")
        secrets[AWS_PAIR[finding.rule]] = other
    return secrets


def _check_rate(family: str) -> None:
    usage = ratelimit.hit(f"security.verify.{family}", family, settings.SECURITY_VERIFY_RATE)
    if usage.should_limit:
        raise RateLimited(f"At most {settings.SECURITY_VERIFY_RATE} {family} verifications; try again in {max(1, usage.time_left)} s.")


def verify_scope(params: VerifySecretInput) -> str | None:
    """Approval per family; a call that cannot run (family off, no such finding) needs none: it fails at once, saying why."""
    try:
        return f"secrets:{_finding_and_family(params.finding_id)[1]}"
    except ScanError:
        return None


@operation(
    "security.verify_secret",
    risk=Risk.RISKY,
    permission="security.triage_findings",
    approval_scope=verify_scope,
    planner=plan_verification,
    target=lambda p: f"finding {p.finding_id}",
)
def verify_secret(ctx: Context, params: VerifySecretInput) -> VerifySecretOutput:
    """Ask the provider whether a found secret still works, with a read-only identity call (GitHub /user, Slack
    auth.test, AWS sts:GetCallerIdentity). Off unless the family is in SECURITY_VERIFY_FAMILIES; needs approval;
    rate-limited per family. The secret is read again from the file and never stored; a live one becomes critical
    and fails every scan's gate, even when baselined."""
    finding, family = _finding_and_family(params.finding_id)
    _check_rate(family)
    secrets = _secrets(finding)
    if family == "aws":
        verdict = verify.aws(secrets["aws-access-key-id"], secrets["aws-secret-access-key"])
    else:
        verdict = getattr(verify, family)(secrets[finding.rule])
    del secrets
    old = finding.severity
    finding.verification, finding.verified_at = verdict.status, timezone.now()
    if verdict.status == verify.LIVE:
        finding.severity = "critical"
    finding.save(update_fields=["verification", "verified_at", "severity", "severity_rank"])
    who = f" as {verdict.identity}" if verdict.identity else ""
    FindingComment.objects.create(
        finding=finding,
        author=ctx.user,
        text=f"Verification: {verdict.status}{who} ({verdict.detail}); severity {old} -> {finding.severity}.",
    )
    return VerifySecretOutput(finding_id=finding.pk, status=verdict.status, identity=verdict.identity, detail=verdict.detail)
