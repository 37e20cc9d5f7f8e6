"""Findings across scans (new, seen again, fixed, reopened), triage through the
gateway (status, assignee, accepted risk with expiry, comments), and the audit trail."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.errors import OpsError, PermissionDenied
from apps.core.gateway import invoke
from apps.security import findings
from apps.security.models import Finding, ScanRoot

from .samples import ALNUM, Gen

g = Gen("findings")
GH = "ghp_" + g(ALNUM, 36)
GL = "glpat-" + g(ALNUM, 20)


@pytest.fixture
def scanned(scan_root, make_user, run_scan):
    root, base = scan_root({"app/settings.py": f'GITHUB = "{GH}"\nGITLAB = "{GL}"\n'})
    operator = make_user("operator")
    job, scan = run_scan(operator, "security.scan_secrets", {"root": root.name, "path": "app"})
    assert job.status == "succeeded", job.error

    def rescan(text):
        (base / "app/settings.py").write_text(text)
        return run_scan(operator, "security.scan_secrets", {"root": root.name, "path": "app"})[1]

    return operator, scan, rescan


def test_a_finding_is_the_same_finding_in_the_next_scan(scanned):
    _, first, rescan = scanned
    assert first.stats["new"] == 2
    gh = Finding.objects.get(rule="github-pat")
    assert (gh.status, gh.first_scan_id, gh.line) == ("open", first.pk, 1)
    second = rescan(f'# moved\nGITHUB = "{GH}"\n')  # GitLab token removed, GitHub token moved
    gh.refresh_from_db()
    assert (second.stats["new"], second.stats["seen_again"], second.stats["fixed"]) == (0, 1, 1)
    assert (gh.first_scan_id, gh.last_scan_id, gh.line, gh.status) == (first.pk, second.pk, 2, "open")
    assert Finding.objects.get(rule="gitlab-pat").status == "fixed"
    third = rescan(f'GITHUB = "{GH}"\nGITLAB = "{GL}"\n')  # it came back
    gl = Finding.objects.get(rule="gitlab-pat")
    assert (third.stats["reopened"], gl.status) == (1, "open")
    assert [c.status_to for c in gl.comments.all()] == ["fixed", "open"]


def test_a_scan_with_the_callers_own_allow_lists_takes_no_guarded_finding_out_of_the_gate(scanned, run_scan):
    """A secret verified live may leave the gate only through an approved triage (or a scan that no longer sees it
    with no allow-lists of the caller's): a rescan allow-listing everything does not fix it. An unguarded one it does."""
    operator, _, rescan = scanned
    Finding.objects.filter(rule="github-pat").update(verification="live", severity="critical")  # the provider said so
    root = ScanRoot.objects.get().name
    for allow in ({"allow_patterns": [".*"]}, {"allow_paths": ["*"]}):
        _, scan = run_scan(operator, "security.scan_secrets", {"root": root, "path": "app", **allow})
        assert (scan.stats["total"], scan.stats["gate"]) == (0, "fail"), allow  # hidden from this scan, not gone
        assert Finding.objects.get(rule="github-pat").status == "open", allow
    assert Finding.objects.get(rule="gitlab-pat").status == "fixed"  # not guarded: an allow-list may say it is gone
    rescan("# both removed\n")  # gone for real, with no allow-list: fixed
    assert Finding.objects.get(rule="github-pat").status == "fixed"


def test_triage_status_assignee_and_comment_are_audited(scanned, make_user, actor_of):
    operator, _, _ = scanned
    colleague = make_user("operator")
    gh = Finding.objects.get(rule="github-pat")
    out = invoke(
        "security.triage_finding",
        actor_of(operator),
        {"finding_id": gh.pk, "status": "triaged", "assignee": colleague.username, "comment": "Rotating it today."},
    ).result
    assert (out.status, out.assignee) == ("triaged", colleague.username)
    comment = gh.comments.get()
    assert (comment.status_from, comment.status_to, comment.author) == ("open", "triaged", operator)
    assert comment.text == f"Rotating it today.\nAssigned to {colleague.username}."
    event = AuditEvent.objects.filter(operation="security.triage_finding").first()
    assert (event.outcome, event.target, event.actor) == ("ok", f"finding {gh.pk}", operator.username)
    with pytest.raises(OpsError, match="no active user named"):
        invoke("security.triage_finding", actor_of(operator), {"finding_id": gh.pk, "assignee": "nobody-here"})
    assert AuditEvent.objects.filter(operation="security.triage_finding").first().outcome == "failed"


def test_viewer_sees_but_cannot_triage(scanned, make_user, actor_of):
    viewer = make_user("viewer")
    listed = invoke("security.findings", actor_of(viewer), {}).result
    assert listed.total == 2 and {f.rule for f in listed.findings} == {"github-pat", "gitlab-pat"}
    with pytest.raises(PermissionDenied):
        invoke(
            "security.triage_finding", actor_of(viewer), {"finding_id": listed.findings[0].id, "status": "false_positive", "comment": "x"}
        )


def test_accepted_risk_needs_expiry_and_reason_and_expires(scanned, actor_of):
    operator, _, rescan = scanned
    gh = Finding.objects.get(rule="github-pat")
    actor = actor_of(operator)
    now = timezone.now()
    with pytest.raises(OpsError, match="expiry date in the future"):
        invoke("security.triage_finding", actor, {"finding_id": gh.pk, "status": "accepted", "comment": "ok"})
    with pytest.raises(OpsError, match="at most 366 days"):
        invoke(
            "security.triage_finding",
            actor,
            {"finding_id": gh.pk, "status": "accepted", "accepted_until": str(now + timedelta(days=400)), "comment": "x"},
        )
    with pytest.raises(OpsError, match="Say why"):
        invoke(
            "security.triage_finding", actor, {"finding_id": gh.pk, "status": "accepted", "accepted_until": str(now + timedelta(days=7))}
        )
    until = now + timedelta(days=7)
    invoke(
        "security.triage_finding",
        actor,
        {"finding_id": gh.pk, "status": "accepted", "accepted_until": until.isoformat(), "comment": "Test token."},
    )
    gh.refresh_from_db()
    assert gh.status == "accepted" and gh.accepted_until == until
    # a scan that no longer sees it does not touch an accepted risk; one that sees it keeps it accepted
    rescan(f'GITHUB = "{GH}"\n')
    gh.refresh_from_db()
    assert gh.status == "accepted"
    # the clock moves past the expiry: open again, with a note
    assert findings.expire_acceptances(now + timedelta(days=6)) == 0
    assert findings.expire_acceptances(now + timedelta(days=8)) == 1
    gh.refresh_from_db()
    assert (gh.status, gh.accepted_until) == ("open", None)
    assert gh.comments.last().text.startswith("Risk acceptance expired on")


def test_findings_filters(scanned, actor_of):
    operator, _, _ = scanned
    actor = actor_of(operator)
    assert invoke("security.findings", actor, {"severity": ["critical"]}).result.total == 2
    assert invoke("security.findings", actor, {"rule": "gitlab-pat"}).result.findings[0].rule == "gitlab-pat"
    assert invoke("security.findings", actor, {"kind": "dependencies"}).result.total == 0
    assert invoke("security.findings", actor, {"status": ["fixed"]}).result.total == 0
    assert invoke("security.findings", actor, {"search": "GitHub"}).result.total == 1
    assert invoke("security.findings", actor, {"assignee": "-"}).result.total == 2
    page = invoke("security.findings", actor, {"limit": 1, "offset": 1}).result
    assert (page.total, len(page.findings)) == (2, 1)
