"""Four-eyes approval: pending, voting rules, quorum, expiry — and the approved
job running on a real worker, attributed to the requester."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.approvals import services
from apps.approvals.models import ApprovalPolicy, ApprovalRequest
from apps.audit.models import AuditEvent
from apps.core import operations
from apps.core.errors import PermissionDenied, RateLimited
from apps.core.gateway import invoke, run_job
from apps.core.models import Job
from tests.support.waiting import wait_for

RISKY = "core.purge_jobs"


def request_purge(actor, days=30):
    return invoke(RISKY, actor, {"older_than_days": days}).approval


def test_requester_cannot_approve_own_request_even_as_approver(make_user, actor_of):
    both = actor_of(make_user("operator", "approver"))
    approval = request_purge(both)
    with pytest.raises(PermissionDenied, match="own request"):
        services.vote(approval.pk, both, "approve")
    approval.refresh_from_db()
    assert approval.status == "pending" and not approval.votes.exists()
    assert AuditEvent.objects.filter(operation="approvals.approve", outcome="denied").count() == 1


def test_a_token_cannot_vote(make_user, make_token, actor_of):
    approval = request_purge(actor_of(make_user("operator")))
    approver = make_user("approver")
    token, _ = make_token(approver)
    with pytest.raises(PermissionDenied, match="API token"):
        services.vote(approval.pk, actor_of(approver, token), "approve")
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "pending"


def test_non_approver_cannot_vote(make_user, actor_of):
    approval = request_purge(actor_of(make_user("operator")))
    with pytest.raises(PermissionDenied, match="approve_requests permission"):
        services.vote(approval.pk, actor_of(make_user("operator")), "approve")


def test_votes_and_acknowledgements_are_operations_through_the_gateway(make_user, actor_of, settings):
    """A vote changes a request's status: it is an operation (role check, rate limit, one audit event naming the
    request, the comment redacted), offered to people in the web UI only, never to agents."""
    for name in ("approvals.approve", "approvals.reject", "approvals.acknowledge"):
        op = operations.get(name)
        assert op.risk == "write" and not op.exposed, name
    assert operations.get("approvals.approve").permission == "approvals.approve_requests"
    settings.OPS_RATE_LIMITS = {**settings.OPS_RATE_LIMITS, "write": "1/m"}
    operator = actor_of(make_user("operator"))
    first, second = request_purge(operator), request_purge(operator, days=60)
    approver = actor_of(make_user("approver"))
    services.vote(first.pk, approver, "approve", "fine, password=hunter2")
    with pytest.raises(RateLimited):
        services.vote(second.pk, approver, "reject")
    assert ApprovalRequest.objects.get(pk=second.pk).status == "pending" and not second.votes.exists()
    ok = AuditEvent.objects.get(operation="approvals.approve")
    assert (ok.outcome, ok.approval_id, ok.target, ok.params["comment"]) == ("ok", str(first.pk), RISKY, "fine, password=[redacted]")
    assert AuditEvent.objects.get(operation="approvals.reject").outcome == "denied"


def test_a_job_reaches_the_broker_only_after_the_event_of_the_call_that_queued_it(transactional_db, make_user, actor_of):
    """The audit log tells the story in order: the vote that approved a job, then the job's own events, however
    fast a worker takes it. Celery's publish signal looks at the log the moment the job goes to the broker
    (real commits: the job is handed over when its transaction commits)."""
    from celery.signals import before_task_publish

    seen = []

    def published(**kwargs):
        events = AuditEvent.objects.filter(operation__in=["approvals.approve", RISKY])
        seen.append(list(events.order_by("seq").values_list("operation", "outcome")))

    approval = request_purge(actor_of(make_user("operator")))
    before_task_publish.connect(published, weak=False)
    try:
        services.vote(approval.pk, actor_of(make_user("approver")), "approve")
    finally:
        before_task_publish.disconnect(published)
    assert seen == [[("core.purge_jobs", "pending"), ("approvals.approve", "ok")]]


def test_the_wait_timer_holds_an_approved_job_until_it_is_due(make_user, actor_of):
    ApprovalPolicy.objects.create(operation=RISKY, quorum=1, wait_minutes=5)
    approval = request_purge(actor_of(make_user("operator")))
    services.vote(approval.pk, actor_of(make_user("approver")), "approve")
    job = Job.objects.get(approval_id=approval.pk)
    assert job.status == "queued" and job.message == "waiting for the wait timer"
    assert timedelta(minutes=4, seconds=50) < job.not_before - timezone.now() <= timedelta(minutes=5)
    run_job(str(job.pk))  # a worker that gets it early leaves it queued
    job.refresh_from_db()
    assert job.status == "queued" and job.started_at is None
    Job.objects.filter(pk=job.pk).update(not_before=timezone.now() - timedelta(seconds=1))  # five minutes later
    run_job(str(job.pk))
    assert Job.objects.get(pk=job.pk).status == "succeeded"


def test_one_rejection_rejects_and_is_final(make_user, actor_of):
    ApprovalPolicy.objects.create(operation=RISKY, quorum=2)
    approval = request_purge(actor_of(make_user("operator")))
    services.vote(approval.pk, actor_of(make_user("approver")), "approve")
    services.vote(approval.pk, actor_of(make_user("approver")), "reject", "not today")
    approval.refresh_from_db()
    assert approval.status == "rejected"
    with pytest.raises(services.ApprovalError, match="final"):
        services.vote(approval.pk, actor_of(make_user("approver")), "approve")
    assert not Job.objects.exists()


def test_nobody_votes_twice(make_user, actor_of):
    ApprovalPolicy.objects.create(operation=RISKY, quorum=2)
    approval = request_purge(actor_of(make_user("operator")))
    approver = actor_of(make_user("approver"))
    services.vote(approval.pk, approver, "approve")
    with pytest.raises(services.ApprovalError, match="already voted"):
        services.vote(approval.pk, approver, "approve")
    assert approval.votes.count() == 1


def test_quorum_of_two_needs_two_people(make_user, actor_of):
    ApprovalPolicy.objects.create(operation=RISKY, quorum=2)
    approval = request_purge(actor_of(make_user("operator")))
    services.vote(approval.pk, actor_of(make_user("approver")), "approve")
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "pending"
    assert not Job.objects.exists()
    services.vote(approval.pk, actor_of(make_user("approver")), "approve")
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "approved"
    assert Job.objects.get().approval_id == approval.pk


def test_expiry_is_final_and_notifies_the_requester(make_user, actor_of):
    requester = make_user("operator")
    approval = request_purge(actor_of(requester))
    ApprovalRequest.objects.filter(pk=approval.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.expire_due() == 1
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "expired"
    with pytest.raises(services.ApprovalError, match="expired"):
        services.vote(approval.pk, actor_of(make_user("approver")), "approve")
    assert requester.notifications.filter(text__contains="expired").exists()
    expired = AuditEvent.objects.get(operation="approvals.expire", approval_id=str(approval.pk))
    assert (expired.actor, expired.channel, expired.outcome, expired.target) == ("system", "system", "ok", RISKY)  # the gateway's
    # An expiry is the console's: one that is not due changes nothing, whoever asks.
    young = request_purge(actor_of(requester))
    assert not invoke("approvals.expire", actor_of(make_user("approver")), {"request_id": young.pk}).result.expired
    assert ApprovalRequest.objects.get(pk=young.pk).status == "pending"


def test_policy_scope_and_wildcard_precedence(db):
    ApprovalPolicy.objects.create(operation="*", quorum=3)
    ApprovalPolicy.objects.create(operation=RISKY, quorum=2)
    ApprovalPolicy.objects.create(operation=RISKY, scope="environment:prod", quorum=4)
    assert services.policy_for(RISKY, "environment:prod").quorum == 4
    assert services.policy_for(RISKY, "environment:dev").quorum == 2
    assert services.policy_for("storage.delete", "").quorum == 3
    ApprovalPolicy.objects.create(operation="storage.delete", requires_approval=False)
    assert not services.policy_for("storage.delete", "").requires_approval


def test_policy_without_approval_runs_at_once(make_user, actor_of):
    ApprovalPolicy.objects.create(operation=RISKY, requires_approval=False)
    outcome = invoke(RISKY, actor_of(make_user("operator")), {"older_than_days": 30})
    assert outcome.status == "ok" and outcome.result.deleted == 0


@pytest.mark.django_db(transaction=True)
def test_approval_by_another_approver_runs_the_job_on_a_worker(make_user, actor_of, celery_worker):
    requester = make_user("operator")
    old = Job.objects.create(operation="core.echo_job", params={}, channel="web", status=Job.SUCCEEDED)
    Job.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    approval = request_purge(actor_of(requester), days=30)
    approver = make_user("approver")
    services.vote(approval.pk, actor_of(approver), "approve", "ok by me")

    job = Job.objects.get(approval_id=approval.pk)
    assert wait_for(lambda: Job.objects.get(pk=job.pk).finished), celery_worker.tail()
    job.refresh_from_db()
    assert (job.status, job.result, job.requested_by) == ("succeeded", {"deleted": 1}, requester)
    assert not Job.objects.filter(pk=old.pk).exists()
    # The worker saves the finished job, then writes its audit event: wait for that too.
    assert wait_for(lambda: AuditEvent.objects.filter(operation=RISKY, channel="worker").exists()), celery_worker.tail()
    run = AuditEvent.objects.get(operation=RISKY, channel="worker")
    assert (run.actor, run.outcome, run.approval_id) == (requester.username, "ok", str(approval.pk))
    vote_event = AuditEvent.objects.get(operation="approvals.approve")
    assert (vote_event.actor, vote_event.outcome) == (approver.username, "ok")
    assert requester.notifications.filter(text__contains="approved").exists()


def test_list_mine_names_the_caller_as_requester_without_reading_the_user_table(make_user, actor_of):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.core import jobs, operations

    operator = actor_of(make_user("operator"))
    first, second = request_purge(operator), request_purge(operator, days=60)
    request_purge(actor_of(make_user("operator")))  # someone else's: not listed
    ApprovalRequest.objects.filter(pk=first.pk).update(drifted_plan={**first.plan, "changed": True})
    op = operations.get("approvals.list_mine")
    ctx = jobs.Context(actor=operator, channel="web", operation=op, request_id="t")
    with CaptureQueriesContext(connection) as queries:
        listed = services.list_mine(ctx, services.ListMineInput())
    assert [r.request_id for r in listed.requests] == [second.pk, first.pk]
    assert {r.requested_by for r in listed.requests} == {operator.user.username}
    requester_reads = [q["sql"] for q in queries if '"approvals_approvalrequest"."requested_by_id" = "auth_user"' in q["sql"]]
    assert queries and not requester_reads
    # It loads only the columns it shows (_INFO_FIELDS): one read of the requests, no deferred column read per row,
    # and each listed request is what a full read of it gives.
    assert len([q for q in queries if 'FROM "approvals_approvalrequest"' in q["sql"]]) == 1
    assert listed.requests == [services._info(ApprovalRequest.objects.get(pk=pk)) for pk in (second.pk, first.pk)]


def test_list_mine_reads_votes_and_jobs_in_a_fixed_number_of_queries(make_user, actor_of):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.core import jobs, operations

    operator, approver = actor_of(make_user("operator")), actor_of(make_user("approver"))
    ctx = jobs.Context(actor=operator, channel="web", operation=operations.get("approvals.list_mine"), request_id="t")

    def listed_with_queries():
        with CaptureQueriesContext(connection) as queries:
            listed = services.list_mine(ctx, services.ListMineInput())
        return listed, len(queries)

    for days in (30, 40):
        services.vote(request_purge(operator, days=days).pk, approver, "approve")  # approved: a vote and a job each
    few, queries_for_two = listed_with_queries()
    for days in (50, 60, 70):
        services.vote(request_purge(operator, days=days).pk, approver, "approve")
    many, queries_for_five = listed_with_queries()
    assert len(few.requests) == 2 and len(many.requests) == 5
    assert all(r.votes and r.job_id for r in many.requests)
    assert queries_for_five == queries_for_two  # no query per listed request
