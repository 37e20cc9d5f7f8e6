"""One flow, one filter: every event of an approval flow (request -> votes -> job ->
result) carries the same correlation id, with the requester's reason and every
vote's comment (redacted); the operation filter matches a prefix or a word."""

import pytest

from apps.audit.models import AuditEvent
from apps.audit.writer import record
from apps.core.gateway import invoke, run_job

from .flows import approval_flow


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    settings.AUDIT_SINK_OUTBOUND_ALLOW = ["127.0.0.0/8"]


def test_every_event_of_an_approval_flow_shares_one_correlation_id(make_user, actor_of, client_as):
    approval = approval_flow(make_user, actor_of)
    flow = list(AuditEvent.objects.filter(correlation_id=f"approval-{approval.pk}").order_by("seq"))
    assert [(e.operation, e.channel, e.outcome) for e in flow] == [
        ("audit.disable_sink", "web", "pending"),
        ("approvals.approve", "web", "ok"),
        ("audit.disable_sink", "worker", "ok"),
    ]
    request, vote, _result = flow
    assert request.params["request_reason"] == "SIEM migration; old password=[redacted] is void"
    assert vote.params["comment"] == "ok, token: [redacted] rotated"
    assert not AuditEvent.objects.filter(params__icontains="hunter2").exists()
    assert not AuditEvent.objects.filter(params__icontains="abc123").exists()

    rows = client_as("auditor").get("/audit/", {"correlation": f"approval-{approval.pk}"}).context["events"]
    assert sorted(e.seq for e in rows) == [e.seq for e in flow]


def test_a_call_outside_approvals_is_its_own_flow_by_request_id(make_user, actor_of):
    admin = actor_of(make_user("admin"))
    first = invoke("audit.sinks", admin, {}, request_id="req-one")
    invoke("audit.sinks", admin, {}, request_id="req-two")
    event = AuditEvent.objects.get(seq=first.audit_seq)
    assert event.correlation_id == "req-one"
    assert list(AuditEvent.objects.filter(correlation_id="req-one").values_list("seq", flat=True)) == [first.audit_seq]


def test_a_queued_job_keeps_its_requests_correlation(make_user, actor_of):
    operator = actor_of(make_user("operator"))
    queued = invoke("core.echo_job", operator, {"steps": 1, "step_seconds": 0}, request_id="req-job")
    run_job(str(queued.job.pk))
    assert list(AuditEvent.objects.filter(correlation_id="req-job").values_list("channel", flat=True).order_by("seq")) == ["web", "worker"]


@pytest.mark.parametrize(
    "query,expected",
    [("infrastructure.", {"infrastructure.deploy", "infrastructure.deploy_rollback", "infrastructure.runbook"}),
     ("deploy", {"infrastructure.deploy", "infrastructure.deploy_rollback"}),
     ("infra", {"infrastructure.deploy", "infrastructure.deploy_rollback", "infrastructure.runbook"}),
     ("storage.list", {"storage.list"}),
     ("list", {"storage.list"}),
     ("ploy", set())],
)  # fmt: skip
def test_operation_filter_matches_a_prefix_or_a_word(client_as, query, expected):
    for name in ("infrastructure.deploy", "infrastructure.deploy_rollback", "infrastructure.runbook", "storage.list", "mydeploy.x"):
        record(operation=name, outcome="ok", channel="system")
    rows = client_as("auditor").get("/audit/", {"operation": query, "channel": "system"}).context["events"]
    assert {e.operation for e in rows} == expected


def test_a_break_glass_run_is_one_flow_with_its_reason_and_acknowledgements(make_user, actor_of):
    from apps.approvals import breakglass

    admin = actor_of(make_user("admin"))
    run = invoke("core.purge_jobs", admin, {"older_than_days": 30}, reason="disk full; root password=hunter2", break_glass=True)
    review = AuditEvent.objects.get(seq=run.audit_seq).approval_id
    breakglass.acknowledge(int(review), actor_of(make_user("approver")), "seen, Bearer abc.def")
    flow = list(AuditEvent.objects.filter(correlation_id=f"approval-{review}").order_by("seq"))
    assert [e.operation for e in flow] == ["approvals.break_glass", "core.purge_jobs", "approvals.acknowledge"]
    assert flow[0].params["reason"] == flow[1].params["request_reason"] == "disk full; root password=[redacted]"
    assert flow[2].params["comment"] == "seen, Bearer [redacted]"
    assert not AuditEvent.objects.filter(params__icontains="hunter2").exists()
    assert not AuditEvent.objects.filter(params__icontains="abc.def").exists()
