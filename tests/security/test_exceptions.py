"""Scoped, expiring exceptions: one vulnerability in one package (versions, paths),
with a reason and an expiry; audited; critical ones wait for approval; another
version is a finding again, and so is everything when the exception expires;
SARIF carries them as suppressions."""

import json
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
from django.utils import timezone

from apps.approvals import services as approvals
from apps.approvals.models import ApprovalPolicy
from apps.audit.models import AuditEvent
from apps.core import gateway, operations
from apps.core.errors import OpsError, PermissionDenied
from apps.core.models import Job
from apps.security import findings
from apps.security.models import AdvisoryException, Finding

SCHEMA = json.loads((Path(__file__).parents[2] / "apps/security/schemas/sarif-schema-2.1.0.json").read_text())
LOCK = '{"lockfileVersion": 3, "packages": {"node_modules/minimist": {"version": "1.2.5"}}}'


@pytest.fixture
def project(scan_root, advisories, make_user, run_scan):
    root, base = scan_root({"requirements.txt": "requests==2.30.0\ndjango==4.2.2\n", "web/package-lock.json": LOCK})
    operator = make_user("operator")

    def audit():
        job, scan = run_scan(operator, "security.audit_dependencies", {"root": root.name})
        assert job.status == "succeeded", job.error
        return {f.package: f for f in Finding.objects.filter(target=scan.target).exclude(status="fixed")}

    return base, operator, audit


def add(actor, **params):
    defaults = {"reason": "Not reachable: we never send proxied requests.", "expires_at": (timezone.now() + timedelta(days=30)).isoformat()}
    return gateway.invoke("security.add_exception", actor, {**defaults, **params}, "web")


def test_an_exception_accepts_that_vulnerability_in_that_version_only(project, actor_of):
    base, operator, audit = project
    found = audit()
    outcome = add(actor_of(operator), vulnerability="GHSA-j8r2-6x86-q33q", package="requests")  # any id of it
    assert outcome.status == "ok"  # not critical: no approval needed
    exc = AdvisoryException.objects.get()
    assert (exc.package, exc.versions, exc.severity) == ("requests", "==2.30.0", "medium")  # the version found now
    assert set(exc.aliases) == {"GHSA-j8r2-6x86-q33q", "CVE-2023-32681"}
    found["requests"].refresh_from_db()
    assert (found["requests"].status, found["requests"].exception_id) == ("accepted", exc.pk)
    assert found["django"].status == "open"  # another package, another vulnerability
    event = AuditEvent.objects.get(operation="security.add_exception")
    assert event.outcome == "ok" and event.target == "GHSA-j8r2-6x86-q33q in requests"

    assert audit()["requests"].status == "accepted"  # a rescan keeps it accepted
    (base / "requirements.txt").write_text("requests==2.29.0\ndjango==4.2.2\n")
    again = audit()
    assert (again["requests"].version, again["requests"].status) == ("2.29.0", "open")  # another version: a finding again


def test_an_exception_scoped_to_a_path_covers_nothing_elsewhere(project, actor_of):
    _, operator, audit = project
    audit()
    add(actor_of(operator), vulnerability="CVE-2023-32681", package="requests", versions=">=2.0,<2.31", path="services/*")
    assert audit()["requests"].status == "open"


def test_version_alternatives_cover_each_of_them_and_nothing_between(project, actor_of):
    base, operator, audit = project
    audit()
    add(actor_of(operator), vulnerability="CVE-2023-32681", package="requests", versions="==2.28.0 || >=2.30.0,<2.30.1")
    assert audit()["requests"].status == "accepted"
    (base / "requirements.txt").write_text("requests==2.29.0\ndjango==4.2.2\n")  # between the alternatives
    assert audit()["requests"].status == "open"
    (base / "requirements.txt").write_text("requests==2.28.0\ndjango==4.2.2\n")
    assert audit()["requests"].status == "accepted"


def test_an_expired_exception_makes_the_finding_come_back(project, actor_of):
    _, operator, audit = project
    audit()
    add(actor_of(operator), vulnerability="CVE-2023-32681", package="requests")
    finding = Finding.objects.get(package="requests")
    assert finding.status == "accepted"
    findings.expire_acceptances(timezone.now() + timedelta(days=31))
    finding.refresh_from_db()
    assert (finding.status, finding.exception_id) == ("open", None)
    assert "expired" in finding.comments.last().text
    AdvisoryException.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    assert audit()["requests"].status == "open"  # and a rescan does not accept it again


def test_a_critical_exception_waits_for_approval_of_its_plan(project, actor_of, make_user):
    _, operator, audit = project
    audit()
    op = operations.get("security.add_exception")
    params = op.input.model_validate(
        {"vulnerability": "CVE-2021-44906", "package": "minimist", "ecosystem": "npm", "reason": "Only parses our own CLI flags.",
         "expires_at": (timezone.now() + timedelta(days=7)).isoformat()}
    )  # fmt: skip
    plan = op.planner(None, params)
    assert (plan["severity"], plan["versions"], plan["ids"]) == ("critical", "==1.2.5", ["CVE-2021-44906", "GHSA-xvch-5gv4-984h"])
    outcome = gateway.invoke("security.add_exception", actor_of(operator), params, "web")
    assert outcome.status == "pending" and not AdvisoryException.objects.exists()
    assert Finding.objects.get(package="minimist").status == "open"
    approvals.vote(outcome.approval.pk, actor_of(make_user("approver")), "approve")
    gateway.run_job(str(Job.objects.get(operation="security.add_exception").pk))
    assert Finding.objects.get(package="minimist").status == "accepted"
    assert AdvisoryException.objects.get().created_by == operator


def test_an_exempting_policy_does_not_let_one_person_take_a_critical_finding_out_of_the_gate(project, actor_of, make_user):
    """Accepting a critical vulnerability, or dismissing it in triage, lowers the gate: a guard call, approved by
    someone else even under a row that exempts the scope (or everything); break-glass does not apply."""
    _, operator, audit = project
    minimist = audit()["minimist"]
    for row in ({"operation": "*"}, {"operation": "*", "scope": "severity:critical"}):
        ApprovalPolicy.objects.create(**row, requires_approval=False)
    until = (timezone.now() + timedelta(days=7)).isoformat()
    exception = {"vulnerability": "CVE-2021-44906", "package": "minimist", "ecosystem": "npm", "reason": "Only parses our own CLI flags.",
                 "expires_at": until}  # fmt: skip
    assert gateway.invoke("security.add_exception", actor_of(operator), exception, "mcp").status == "pending"
    triage = {"finding_id": minimist.pk, "status": "false_positive", "comment": "We do not use it."}
    assert gateway.invoke("security.triage_finding", actor_of(operator), triage, "web").status == "pending"
    with pytest.raises(PermissionDenied, match="lowers a guard"):
        gateway.invoke("security.triage_finding", actor_of(make_user("admin")), triage, "web", reason="fire", break_glass=True)
    assert Finding.objects.get(pk=minimist.pk).status == "open" and not AdvisoryException.objects.exists()


def test_triage_is_no_way_around_the_guard_on_critical_vulnerabilities(project, actor_of, make_user, client):
    _, operator, audit = project
    found = audit()
    minimist, requests = found["minimist"], found["requests"]
    assert (minimist.severity, requests.severity) == ("critical", "medium")
    until = (timezone.now() + timedelta(days=7)).isoformat()
    accept = {"status": "accepted", "accepted_until": until, "comment": "Only parses our own CLI flags."}
    for params in (accept, {"status": "false_positive", "comment": "We do not use it."}, {"status": "fixed"}):
        outcome = gateway.invoke("security.triage_finding", actor_of(operator), {"finding_id": minimist.pk, **params}, "web")
        assert outcome.status == "pending" and outcome.approval.scope == "severity:critical"
    assert Finding.objects.get(pk=minimist.pk).status == "open"
    # a lesser one is triaged at once, and so is a critical one that is only assigned or commented
    for params in ({"finding_id": requests.pk, **accept}, {"finding_id": minimist.pk, "comment": "Looking."}):
        assert gateway.invoke("security.triage_finding", actor_of(operator), params, "web").status == "ok"
    # the web form says so and goes to the approval request
    client.force_login(operator)
    response = client.post(f"/security/findings/{minimist.pk}/triage/", {"status": "false_positive", "comment": "We do not use it."})
    assert response.status_code == 302 and "/approvals/" in response["Location"]
    # approved, it is done as asked, by the person who asked
    outcome = gateway.invoke("security.triage_finding", actor_of(operator), {"finding_id": minimist.pk, **accept}, "web")
    approvals.vote(outcome.approval.pk, actor_of(make_user("approver")), "approve")
    approval = Job.objects.filter(operation="security.triage_finding").order_by("-created_at").first()
    gateway.run_job(str(approval.pk))
    minimist.refresh_from_db()
    assert minimist.status == "accepted" and minimist.comments.last().author == operator


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"vulnerability": "CVE-2023-32681", "package": "requests", "versions": "~2.30"}, "not a comparison"),
        ({"vulnerability": "CVE-1999-0001", "package": "requests"}, "No advisory names"),
        ({"vulnerability": "CVE-2023-32681", "package": "django"}, "No advisory names"),  # the vulnerability AND the package
        ({"vulnerability": "CVE-2023-32681", "package": "requests", "expires_at": "2020-01-01T00:00:00Z"}, "in the future"),
        ({"vulnerability": "CVE-2023-32681", "package": "requests", "expires_at": "2099-01-01T00:00:00Z"}, "at most 366 days"),
        ({"vulnerability": "CVE-2023-32681", "package": "requests", "reason": "because"}, "reason"),
    ],
)
def test_a_bad_exception_is_refused_and_nothing_changes(project, actor_of, params, message):
    _, operator, audit = project
    audit()
    with pytest.raises(OpsError) as err:
        add(actor_of(operator), **params)
    assert message in str(getattr(err.value, "message", err.value)) + json.dumps(getattr(err.value, "errors", None) or {}, default=str)
    assert not AdvisoryException.objects.exists() and Finding.objects.get(package="requests").status == "open"


def test_viewers_cannot_create_exceptions(project, actor_of, make_user):
    project[2]()
    with pytest.raises(OpsError):
        add(actor_of(make_user("viewer")), vulnerability="CVE-2023-32681", package="requests")
    assert not AdvisoryException.objects.exists()


def test_sarif_carries_exceptions_as_suppressions_with_their_reason(project, actor_of):
    _, operator, audit = project
    audit()
    add(actor_of(operator), vulnerability="CVE-2023-32681", package="requests")
    out = gateway.invoke(
        "security.export_sarif", actor_of(operator), {"kind": "dependencies", "status": ["open", "accepted"]}, "web"
    ).result
    assert not list(jsonschema.Draft4Validator(SCHEMA).iter_errors(out.sarif))
    results = {r["properties"]["package"]: r for r in out.sarif["runs"][0]["results"]}
    suppression = results["requests"]["suppressions"][0]
    assert suppression["kind"] == "external" and "we never send proxied requests" in suppression["justification"]
    assert "==2.30.0" in suppression["justification"] and "suppressions" not in results["django"]


def test_the_finding_page_shows_its_exception(project, actor_of, client):
    _, operator, audit = project
    audit()
    add(actor_of(operator), vulnerability="CVE-2023-32681", package="requests")
    client.force_login(operator)
    page = client.get(Finding.objects.get(package="requests").get_absolute_url()).content.decode()
    assert "we never send proxied requests" in page and "==2.30.0" in page
