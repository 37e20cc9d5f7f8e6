"""Retention: old events are pruned only behind a signed anchor (the chain then verifies
from it), never under a legal hold, and only through guarded (risky) operations."""

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps.approvals.models import ApprovalPolicy
from apps.audit import writer
from apps.audit.anchors import write_anchor
from apps.audit.models import AuditEvent, AuditSink, Prune
from apps.audit.services import RetentionError
from apps.audit.verify import verify_chain
from apps.core.errors import InvalidInput, PermissionDenied
from apps.core.gateway import invoke
from tests.support.approving import approve_and_run


@pytest.fixture(autouse=True)
def retention(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_PATH = str(tmp_path / "anchors.jsonl")
    settings.AUDIT_RETENTION_DAYS = 30


@pytest.fixture
def admin(make_user, actor_of):
    return actor_of(make_user("admin"))


@pytest.fixture
def unguarded(db):
    """The approval policy an organisation sets when an admin may prune alone (tests run the operation itself)."""
    for name in ("audit.prune", "audit.legal_hold"):
        ApprovalPolicy.objects.create(operation=name, requires_approval=False)


@pytest.fixture
def history(db, monkeypatch):
    """Five events from 40 days ago, then three from today (seq 6–8)."""
    past = timezone.now() - timedelta(days=40)
    monkeypatch.setattr(writer, "clock", lambda: past)
    for i in range(5):
        writer.record(operation="test.old", outcome="ok", channel="system", target=f"old{i}")
    monkeypatch.setattr(writer, "clock", timezone.now)
    for i in range(3):
        writer.record(operation="test.new", outcome="ok", channel="system", target=f"new{i}")


def test_prune_and_legal_hold_are_guarded_operations_that_wait_for_approval(history, admin):
    write_anchor()
    outcome = invoke("audit.prune", admin, {"through_seq": 5}, "web")
    assert outcome.status == "pending" and outcome.approval.operation == "audit.prune"
    assert invoke("audit.legal_hold", admin, {"active": True, "reason": "case 42"}, "web").status == "ok"  # raising: at once
    assert AuditEvent.objects.filter(seq=1).exists()


def test_planner_says_which_events_would_go(history, admin):
    from apps.audit.services import PruneInput, plan_prune

    write_anchor()
    plan = plan_prune(None, PruneInput(through_seq=5))
    assert plan["remove"] | {"newest_removed_at": None} == {"first_seq": 1, "through_seq": 5, "events": 5, "newest_removed_at": None}
    assert plan["chain_restarts_from"] == {"seq": 5, "hash": AuditEvent.objects.get(seq=5).hash}


def test_old_events_are_pruned_behind_a_signed_anchor_and_the_chain_still_verifies(history, admin, unguarded):
    write_anchor()
    status = invoke("audit.retention", admin, {}, "web").result
    assert (status.prunable_through_seq, status.legal_hold) == (5, False)
    result = invoke("audit.prune", admin, {"through_seq": 5}, "web").result
    assert (result.removed, result.first_seq_kept) == (5, 6)
    assert AuditEvent.objects.order_by("seq").values_list("seq", flat=True).first() == 6
    prune = Prune.objects.get()
    assert prune.anchor["anchor"]["kind"] == "prune" and prune.through_seq == 5
    verified = verify_chain()
    assert verified.ok and verified.checked == AuditEvent.objects.count()


def test_nothing_unanchored_or_too_young_is_pruned(history, admin, unguarded):
    with pytest.raises(InvalidInput) as no_anchor:
        invoke("audit.prune", admin, {"through_seq": 3}, "web")
    assert "nothing yet" in no_anchor.value.errors["through_seq"]
    write_anchor()
    with pytest.raises(InvalidInput, match="at most #5"):
        invoke("audit.prune", admin, {"through_seq": 6}, "web")
    assert AuditEvent.objects.filter(seq=1).exists()


def test_nothing_an_enabled_sink_has_not_received_is_pruned(history, admin, unguarded):
    """A SIEM that is down keeps its cursor: pruning past it would lose what it has not received."""
    write_anchor()
    sink = AuditSink.objects.create(name="siem", kind="https", address="https://siem.example/in", cursor=3)
    assert invoke("audit.retention", admin, {}, "web").result.prunable_through_seq == 3
    with pytest.raises(InvalidInput, match="at most #3"):
        invoke("audit.prune", admin, {"through_seq": 4}, "web")
    assert AuditEvent.objects.filter(seq=4).exists()
    AuditSink.objects.filter(pk=sink.pk).update(enabled=False)  # disabling is itself an approved operation
    assert invoke("audit.prune", admin, {"through_seq": 5}, "web").result.removed == 5


def test_a_legal_hold_stops_pruning_until_lifted(history, admin, unguarded, make_user, actor_of):
    """Lifting a hold lowers a guard: it waits for someone else even where a policy lets an admin prune alone
    (`unguarded`), and break-glass does not lift it; placing one is immediate."""
    write_anchor()
    assert invoke("audit.legal_hold", admin, {"active": True, "reason": "matter 2026-17"}, "web").status == "ok"
    with pytest.raises(RetentionError, match="legal hold is active \\(matter 2026-17\\)"):
        invoke("audit.prune", admin, {"through_seq": 5}, "web")
    assert AuditEvent.objects.filter(seq=1).exists()
    lift = invoke("audit.legal_hold", admin, {"active": False, "reason": "matter closed"}, "web")
    assert lift.status == "pending" and lift.approval.plan["legal_hold"] == {"before": True, "after": False}
    with pytest.raises(PermissionDenied, match="lowers a guard"):
        invoke("audit.legal_hold", admin, {"active": False, "reason": "now"}, "web", reason="fire", break_glass=True)
    with pytest.raises(RetentionError, match="legal hold is active"):
        invoke("audit.prune", admin, {"through_seq": 5}, "web")
    approve_and_run(lift.approval, actor_of(make_user("approver")))
    assert invoke("audit.prune", admin, {"through_seq": 5}, "web").result.removed == 5


def test_removing_the_prune_record_or_forging_its_anchor_is_detected(history, admin, unguarded):
    write_anchor()
    invoke("audit.prune", admin, {"through_seq": 5}, "web")
    prune = Prune.objects.get()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_prune SET anchor = %s", [
            '{"anchor": {"kind": "prune", "seq": 5, "hash": "%s", "key_id": "x", "at": "now"}, "signature": "AAAA"}' % ("0" * 64)
        ])  # fmt: skip
    assert "has no valid signed anchor" in verify_chain().problem
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_prune WHERE id = %s", [prune.pk])
    result = verify_chain()
    assert not result.ok and "expected #1, found #6" in result.problem


def test_postgresql_deletes_only_through_audit_prune_and_never_under_a_hold(history, admin, unguarded):
    if connection.vendor != "postgresql":
        pytest.skip("the trigger exists on PostgreSQL only")
    write_anchor()

    def refused(*statements):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)

    refused("SELECT audit_prune(3)")  # no recorded prune (with its signed anchor) covers these events
    refused("SELECT set_config('opsconsole.audit_prune_through', '3', true)", "DELETE FROM audit_auditevent WHERE seq <= 3")
    invoke("audit.legal_hold", admin, {"active": True, "reason": "case 9"}, "web")
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO audit_prune (through_seq, anchor, at, by) VALUES (3, '{}', now(), 'x')")
    refused("SELECT audit_prune(3)")  # a hold stops even the sanctioned path
    assert AuditEvent.objects.filter(seq=1).exists()
