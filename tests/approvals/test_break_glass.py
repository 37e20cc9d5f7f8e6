"""Break-glass: an admin runs one risky call without approval, with a reason; it is
loudly audited, every approver is told at once, and a review stays open in the
approvals queue until two other people acknowledge it. Per scope: allowed for
admins by default, off for API tokens."""

import html
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.approvals import breakglass
from apps.approvals.models import ApprovalPolicy, ApprovalRequest
from apps.audit.models import AuditEvent
from apps.core.errors import InvalidInput, PermissionDenied
from apps.core.gateway import invoke
from apps.core.models import Job, Notification


@pytest.fixture
def old_job(db):
    job = Job.objects.create(operation="core.echo_job", params={}, channel="web", status=Job.SUCCEEDED)
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(days=40))
    return job


def break_glass_on_the_form(client, reason):
    return client.post("/operations/core.purge_jobs/", {"older_than_days": 30, "approval_reason": reason, "break_glass": "1"}, follow=True)


def test_an_admin_breaks_glass_from_the_operation_form(client_as, make_user, actor_of, old_job, client):
    approvers = [make_user("approver"), make_user("approver")]
    admin_client = client_as("admin")
    form = admin_client.get("/operations/core.purge_jobs/").content.decode()
    assert 'id="break-glass"' in form

    response = break_glass_on_the_form(admin_client, "disk full on the job database")
    assert response.status_code == 200 and '"deleted": 1' in html.unescape(response.content.decode())
    assert not Job.objects.filter(pk=old_job.pk).exists()  # it ran, without approval

    review = ApprovalRequest.objects.get()
    admin = review.requested_by
    assert (review.status, review.break_glass, review.reason) == ("review", True, "disk full on the job database")
    assert review.plan["jobs"] == 1 and review.executed_at is not None
    loud = AuditEvent.objects.get(operation="approvals.break_glass")
    assert (loud.actor, loud.approval_id, loud.params["reason"]) == (admin.username, str(review.pk), "disk full on the job database")
    ran = AuditEvent.objects.get(operation="core.purge_jobs")
    assert (ran.outcome, ran.approval_id) == ("ok", str(review.pk))
    for approver in approvers:
        assert Notification.objects.filter(user=approver, text__startswith="BREAK-GLASS", text__contains="disk full").exists()

    # It stays open in the queue until two OTHER people acknowledge it.
    assert f"#{review.pk}" in client_as("approver").get("/approvals/").content.decode()
    with pytest.raises(PermissionDenied, match="two other people"):
        breakglass.acknowledge(review.pk, actor_of(admin))
    client.force_login(approvers[0])
    page = client.get(f"/approvals/{review.pk}/").content.decode()
    assert 'id="break-glass-banner"' in page and 'id="acknowledge-form"' in page
    client.post(f"/approvals/{review.pk}/acknowledge/", {"comment": "seen"})
    assert ApprovalRequest.objects.get(pk=review.pk).status == "review"
    breakglass.acknowledge(review.pk, actor_of(make_user("admin")))
    assert ApprovalRequest.objects.get(pk=review.pk).status == "reviewed"
    acks = AuditEvent.objects.filter(operation="approvals.acknowledge").order_by("seq").values_list("outcome", flat=True)
    assert list(acks) == ["denied", "ok", "ok"]


def test_break_glass_needs_a_reason_and_an_admin(client_as, make_user, actor_of, old_job):
    response = break_glass_on_the_form(client_as("admin"), "  ")
    assert response.status_code == 422 and "needs a reason" in response.content.decode()
    with pytest.raises(PermissionDenied, match="not allowed"):
        invoke("core.purge_jobs", actor_of(make_user("operator")), {"older_than_days": 30}, reason="fire", break_glass=True)
    assert 'id="break-glass"' not in client_as("operator").get("/operations/core.purge_jobs/").content.decode()
    assert Job.objects.filter(pk=old_job.pk).exists() and not ApprovalRequest.objects.exists()


def test_a_scope_can_turn_break_glass_off(make_user, actor_of, old_job):
    ApprovalPolicy.objects.create(operation="core.purge_jobs", break_glass_admins=False)
    admin = actor_of(make_user("admin"))
    with pytest.raises(PermissionDenied, match="not allowed"):
        invoke("core.purge_jobs", admin, {"older_than_days": 30}, reason="fire", break_glass=True)
    assert Job.objects.filter(pk=old_job.pk).exists()
    assert AuditEvent.objects.get(operation="core.purge_jobs").outcome == "denied"


def test_tokens_break_glass_only_where_the_scope_allows_it(make_user, make_token, actor_of, old_job):
    user = make_user("admin")
    token, _ = make_token(user)
    as_token = actor_of(user, token)
    with pytest.raises(PermissionDenied, match="API token"):
        invoke("core.purge_jobs", as_token, {"older_than_days": 30}, channel="mcp", reason="fire", break_glass=True)
    ApprovalPolicy.objects.create(operation="core.purge_jobs", break_glass_tokens=True)
    outcome = invoke("core.purge_jobs", as_token, {"older_than_days": 30}, channel="mcp", reason="fire", break_glass=True)
    assert outcome.status == "ok" and outcome.result.deleted == 1
    assert ApprovalRequest.objects.get().credential == f"api:{token.pk}"


def test_without_a_reason_nothing_runs(make_user, actor_of, old_job):
    with pytest.raises(InvalidInput, match="reason"):
        invoke("core.purge_jobs", actor_of(make_user("admin")), {"older_than_days": 30}, break_glass=True)
    assert Job.objects.filter(pk=old_job.pk).exists()
