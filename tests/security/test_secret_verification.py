"""Live-secret verification against local servers speaking GitHub's /user, Slack's
auth.test and AWS STS GetCallerIdentity (SigV4, XML): off by default, approved,
audited, rate-limited, the secret never stored; a live secret is critical and
fails the gate even when baselined."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from apps.approvals import services as approvals
from apps.audit.models import AuditEvent
from apps.core import gateway, operations
from apps.core.errors import OpsError
from apps.core.models import Job
from apps.security.models import Finding, FindingComment
from apps.security.scanning import make_scanner
from apps.security.secretscan import baseline

from .samples import ALNUM, B32, B64, Gen

g = Gen("verify")
GITHUB_LIVE = f"ghp_{g(ALNUM, 36)}"
SLACK_DEAD = f"xoxb-{g('0123456789', 12)}-{g('0123456789', 12)}-{g(ALNUM, 24)}"
AWS_KEY_ID, AWS_SECRET = "AKIA" + g(B32, 16), g(B64, 40)
STS_IDENTITY = """<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/deploy</Arn><UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account>
</GetCallerIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>"""
STS_DENIED = """<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>
<Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error>
<RequestId>2</RequestId></ErrorResponse>"""


class Providers:
    """One local server for the three wire formats; it records what it was asked."""

    def __init__(self):
        self.calls: list[tuple[str, str, dict, str]] = []
        providers = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status, body, content_type="application/json"):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                providers.calls.append(("GET", self.path, dict(self.headers), ""))
                if self.path == "/github/user":
                    if self.headers.get("Authorization") == f"Bearer {GITHUB_LIVE}":
                        return self._answer(200, json.dumps({"login": "deploy-bot", "id": 1}))
                    return self._answer(401, json.dumps({"message": "Bad credentials"}))
                self._answer(404, "{}")

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                providers.calls.append(("POST", self.path, dict(self.headers), body))
                if self.path == "/slack/auth.test":
                    return self._answer(200, json.dumps({"ok": False, "error": "invalid_auth"}))
                if self.path == "/sts/":
                    auth = self.headers.get("Authorization", "")
                    signed = auth.startswith("AWS4-HMAC-SHA256 ") and f"Credential={AWS_KEY_ID}/" in auth and "Signature=" in auth
                    if parse_qs(body).get("Action") == ["GetCallerIdentity"] and signed:
                        return self._answer(200, STS_IDENTITY, "text/xml")
                    return self._answer(403, STS_DENIED, "text/xml")
                self._answer(404, "{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def providers(settings):
    server = Providers()
    settings.SECURITY_VERIFY_GITHUB_URL = f"{server.base}/github"
    settings.SECURITY_VERIFY_SLACK_URL = f"{server.base}/slack"
    settings.SECURITY_VERIFY_AWS_STS_URL = f"{server.base}/sts/"
    settings.SECURITY_VERIFY_RATE = "1000/m"
    yield server
    server.close()


SECRETS_FILE = (
    f'GITHUB_TOKEN = "{GITHUB_LIVE}"\nSLACK = "{SLACK_DEAD}"\naws_access_key_id = {AWS_KEY_ID}\naws_secret_access_key = {AWS_SECRET}\n'
)


@pytest.fixture
def scanned(scan_root, make_user, run_scan):
    root, base = scan_root({"deploy/settings.py": SECRETS_FILE})
    operator = make_user("operator")
    job, scan = run_scan(operator, "security.scan_secrets", {"root": root.name})
    assert job.status == "succeeded", job.error
    return root, base, operator, {f.rule: f for f in Finding.objects.filter(target=scan.target)}


def verify(actor, approver_actor, finding):
    outcome = gateway.invoke("security.verify_secret", actor, {"finding_id": finding.pk}, "web")
    assert outcome.status == "pending"  # a risky operation: someone else approves the call
    approvals.vote(outcome.approval.pk, approver_actor, "approve")
    job = Job.objects.filter(operation="security.verify_secret").order_by("-created_at").first()
    gateway.run_job(str(job.pk))
    job.refresh_from_db()
    return job


def test_verification_is_off_by_default_and_enabled_per_family(scanned, providers, settings, actor_of):
    _, _, operator, found = scanned
    with pytest.raises(OpsError, match="is off"):
        gateway.invoke("security.verify_secret", actor_of(operator), {"finding_id": found["github-pat"].pk}, "web")
    settings.SECURITY_VERIFY_FAMILIES = ["github"]
    for rule in ("slack-bot-token", "aws-access-key-id"):
        with pytest.raises(OpsError, match="is off"):
            gateway.invoke("security.verify_secret", actor_of(operator), {"finding_id": found[rule].pk}, "web")
    assert providers.calls == []


def test_live_github_token_becomes_critical_and_fails_the_gate_even_when_baselined(
    scanned, providers, settings, actor_of, make_user, run_scan
):
    root, base, operator, found = scanned
    settings.SECURITY_VERIFY_FAMILIES = ["github", "slack", "aws"]
    github = found["github-pat"]
    op = operations.get("security.verify_secret")
    plan = op.planner(None, op.input(finding_id=github.pk))
    assert plan["family"] == "github" and GITHUB_LIVE not in json.dumps(plan)
    job = verify(actor_of(operator), actor_of(make_user("approver")), github)
    assert job.status == "succeeded", job.error
    assert (job.result["status"], job.result["identity"]) == ("live", "deploy-bot")
    github.refresh_from_db()
    assert (github.verification, github.severity) == ("live", "critical")
    assert plan["links"] == {f"finding #{github.pk}": github.get_absolute_url()}
    assert providers.calls[-1][2]["Authorization"] == f"Bearer {GITHUB_LIVE}"  # the provider got it; nothing else did
    for text in (
        json.dumps(list(AuditEvent.objects.values("params", "error", "target")), default=str),
        json.dumps(list(Job.objects.values("params", "result", "error")), default=str),
        json.dumps(list(Finding.objects.values()), default=str),
        " ".join(FindingComment.objects.values_list("text", flat=True)),
    ):
        assert GITHUB_LIVE not in text and AWS_SECRET not in text

    # baseline every secret of the file: the live one is still reported, critical, and fails the gate
    all_hits = make_scanner().scan_bytes("deploy/settings.py", SECRETS_FILE.encode())
    (base / baseline.FILENAME).write_text(baseline.dump(all_hits))
    job, scan = run_scan(operator, "security.scan_secrets", {"root": root.name})
    assert job.result["gate"] == "fail" and any("verified live" in f for f in job.result["gate_failures"])
    assert {f.rule for f in Finding.objects.filter(last_scan=scan, status="open")} == {"github-pat"}
    # nor can triage dismiss it alone: calling it a false positive waits for a second person
    dismiss = {"finding_id": github.pk, "status": "false_positive", "comment": "A test token."}
    outcome = gateway.invoke("security.triage_finding", actor_of(operator), dismiss, "web")
    assert outcome.status == "pending" and Finding.objects.get(pk=github.pk).status == "open"
    assert AuditEvent.objects.filter(operation="security.verify_secret", outcome="ok", target=f"finding {github.pk}").exists()


def test_invalid_slack_and_live_aws_pair(scanned, providers, settings, actor_of, make_user):
    _, _, operator, found = scanned
    settings.SECURITY_VERIFY_FAMILIES = ["slack", "aws"]
    approver = actor_of(make_user("approver"))
    slack = verify(actor_of(operator), approver, found["slack-bot-token"])
    assert (slack.result["status"], slack.result["detail"]) == ("invalid", "Slack auth.test: invalid_auth")
    aws = verify(actor_of(operator), approver, found["aws-access-key-id"])
    assert (aws.result["status"], aws.result["identity"]) == ("live", "arn:aws:iam::123456789012:user/deploy")
    sts_call = next(c for c in providers.calls if c[1] == "/sts/")
    assert "Action=GetCallerIdentity" in sts_call[3] and AWS_SECRET not in json.dumps(sts_call)  # signed, never sent
    assert Finding.objects.get(pk=found["aws-access-key-id"].pk).severity == "critical"
    assert Finding.objects.get(pk=found["slack-bot-token"].pk).verification == "invalid"


def test_verification_is_rate_limited_per_family(scanned, providers, settings, actor_of, make_user):
    _, _, operator, found = scanned
    settings.SECURITY_VERIFY_FAMILIES = ["github"]
    settings.SECURITY_VERIFY_RATE = "1/h"
    approver = actor_of(make_user("approver"))
    assert verify(actor_of(operator), approver, found["github-pat"]).status == "succeeded"
    second = verify(actor_of(operator), approver, found["github-pat"])
    assert second.status == "failed" and "At most 1/h github verifications" in second.error
    assert len([c for c in providers.calls if c[1] == "/github/user"]) == 1
