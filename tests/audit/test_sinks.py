"""Configuring sinks is an operation through the gateway: adding or strengthening one
is immediate; disabling one or lowering its guard (destination, format, TLS, trusted
CAs) waits for another person's approval, with a before -> after plan."""

import pytest

from apps.approvals import services as approvals
from apps.audit.models import AuditEvent, AuditSink
from apps.core import operations
from apps.core.errors import InvalidInput, PermissionDenied
from apps.core.gateway import invoke, run_job

LOOPBACK = ["127.0.0.0/8", "::1/128"]
SYSLOG = {"name": "siem", "kind": "syslog", "address": "127.0.0.1:6514", "tls": True}


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    settings.AUDIT_SINK_OUTBOUND_ALLOW = LOOPBACK


@pytest.fixture
def admin(make_user, actor_of):
    return actor_of(make_user("admin"))


def approve(outcome, approver, comment="looks right"):
    approval = approvals.vote(outcome.approval.pk, approver, "approve", comment)
    run_job(str(approval.job.pk))
    return approval


def test_adding_and_strengthening_are_immediate(admin):
    assert invoke("audit.save_sink", admin, {**SYSLOG, "tls": False}).status == "ok"
    assert invoke("audit.save_sink", admin, SYSLOG).status == "ok"  # TLS on: stronger, immediate
    assert AuditSink.objects.get(name="siem").tls


@pytest.mark.parametrize(
    "change",
    [{"address": "127.0.0.2:6514"}, {"tls": False}, {"format": "cef"}, {"kind": "https", "address": "https://127.0.0.1:8443/x"},
     {"enabled": False}, {"ca_pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"}],
)  # fmt: skip
def test_lowering_a_guard_waits_for_approval(admin, make_user, actor_of, change):
    invoke("audit.save_sink", admin, SYSLOG)
    outcome = invoke("audit.save_sink", admin, {**SYSLOG, **change}, reason="moving the SIEM")
    assert outcome.status == "pending" and outcome.approval.scope == "audit-sink:siem"
    before = AuditSink.objects.get(name="siem")
    assert (before.address, before.tls, before.format, before.enabled) == ("127.0.0.1:6514", True, "ocsf", True)

    plan = operations.get("audit.save_sink").planner(None, operations.get("audit.save_sink").input.model_validate({**SYSLOG, **change}))
    key = next(iter(change))
    assert plan["before"][key] != plan["after"][key] and plan["after"][key] == change[key]

    approve(outcome, actor_of(make_user("approver")))
    after = AuditSink.objects.get(name="siem")
    assert getattr(after, key) == change[key]


def test_disabling_waits_for_approval_and_enabling_does_not(admin, make_user, actor_of):
    invoke("audit.save_sink", admin, SYSLOG)
    outcome = invoke("audit.disable_sink", admin, {"name": "siem"})
    assert outcome.status == "pending" and AuditSink.objects.get(name="siem").enabled
    plan = operations.get("audit.disable_sink").planner(None, operations.get("audit.disable_sink").input(name="siem"))
    assert plan["before"]["enabled"] is True and plan["after"]["enabled"] is False
    approve(outcome, actor_of(make_user("approver")))
    assert not AuditSink.objects.get(name="siem").enabled
    assert invoke("audit.enable_sink", admin, {"name": "siem"}).status == "ok"
    assert AuditSink.objects.get(name="siem").enabled


def test_the_token_is_write_only_and_rotating_it_is_immediate(admin):
    invoke("audit.save_sink", admin, {"name": "lake", "kind": "https", "address": "https://127.0.0.1:8443/x", "token": "first-secret"})
    assert invoke("audit.save_sink", admin, {"name": "lake", "kind": "https", "address": "https://127.0.0.1:8443/x"}).status == "ok"
    assert AuditSink.objects.get(name="lake").token == "first-secret"  # empty keeps the stored one
    rotated = invoke("audit.save_sink", admin, {"name": "lake", "kind": "https", "address": "https://127.0.0.1:8443/x", "token": "second"})
    assert rotated.status == "ok" and AuditSink.objects.get(name="lake").token == "second"
    assert not AuditEvent.objects.filter(params__icontains="secret").exists()
    assert not AuditEvent.objects.filter(params__icontains="second").exists()


@pytest.mark.parametrize(
    "params,field",
    [({**SYSLOG, "address": "10.1.2.3:514"}, ("address", "loopback, private")),
     ({**SYSLOG, "address": "169.254.169.254:514"}, ("address", "metadata")),
     ({**SYSLOG, "address": "no-port"}, ("address", "host:port")),
     ({**SYSLOG, "kind": "https"}, ("address", "https:// URL")), ({**SYSLOG, "ca_pem": "not a certificate"}, ("ca_pem", "PEM"))],
)  # fmt: skip
def test_bad_destinations_are_refused_and_nothing_changes(admin, params, field):
    with pytest.raises(InvalidInput) as exc:
        invoke("audit.save_sink", admin, params)
    name, message = field
    assert message in exc.value.errors[name] and not AuditSink.objects.exists()


@pytest.mark.parametrize("role", ["operator", "auditor", "approver", "viewer"])
def test_only_admins_configure_sinks(make_user, actor_of, role):
    with pytest.raises(PermissionDenied):
        invoke("audit.save_sink", actor_of(make_user(role)), SYSLOG)
    assert not AuditSink.objects.exists()


def test_the_web_form_adds_a_sink_and_never_shows_the_token(client, make_user):
    client.force_login(make_user("admin"))
    page = client.get("/operations/audit.save_sink/").content.decode()
    assert 'type="password"' in page and "<textarea" in page
    form = {"name": "web", "kind": "https", "address": "https://127.0.0.1:8443/in", "format": "ocsf", "token": "form-secret-1",
            "enabled": "on", "tls": "on"}  # fmt: skip
    response = client.post("/operations/audit.save_sink/", form)
    assert response.status_code == 200 and "form-secret-1" not in response.content.decode()
    assert AuditSink.objects.get(name="web").token == "form-secret-1"
    assert "has_token&quot;: true" in response.content.decode()  # the result, escaped in the page


def test_a_policy_without_approval_does_not_exempt_weakening_a_sink(admin, make_user, actor_of):
    """Sink changes are guard changes: even an "approval not required" policy leaves them to another person."""
    from apps.approvals.models import ApprovalPolicy

    ApprovalPolicy.objects.create(operation="*", scope="", requires_approval=False)
    invoke("audit.save_sink", admin, SYSLOG)
    assert invoke("audit.disable_sink", admin, {"name": "siem"}).status == "pending"
    assert AuditSink.objects.get(name="siem").enabled
