"""Approvals bind to plans: every risky operation has a planner; the request stores
the plan and its hash; votes are on that hash; the approved job recomputes the plan
as it starts and runs only if the hash still matches (else the request ends
`drifted` and nothing runs); and an approval runs at most once."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from pydantic import BaseModel

from apps.approvals import breakglass, plans, services
from apps.approvals.models import ApprovalRequest, ApprovalVote
from apps.audit.models import AuditEvent
from apps.core import jobs, operations
from apps.core.errors import UnknownOperation
from apps.core.gateway import invoke, run_job
from apps.core.models import Job, Notification
from tests.support import peers
from tests.support.waiting import wait_for


class Nothing(BaseModel):
    pass


def test_a_risky_operation_without_a_planner_cannot_register():
    with pytest.raises(TypeError, match="needs a planner"):

        @operations.operation("tests.unplanned", risk=operations.Risk.RISKY)
        def unplanned(ctx, params: Nothing) -> Nothing:
            """Would run without telling approvers what it does."""

    with pytest.raises(UnknownOperation):
        operations.get("tests.unplanned")
    risky = [op.name for op in operations.all_operations() if op.risk is operations.Risk.RISKY]
    assert risky and all(operations.get(name).planner for name in risky)


def test_the_hash_is_over_the_canonical_form():
    a = {"b": [1, {"y": 2, "x": "é"}], "a": None}
    b = {"a": None, "b": [1, {"x": "é", "y": 2}]}
    assert plans.canonical(a) == '{"a":null,"b":[1,{"x":"é","y":2}]}'
    assert plans.plan_hash(a) == plans.plan_hash(b) and len(plans.plan_hash(a)) == 64
    assert plans.plan_hash(a) != plans.plan_hash({**a, "a": 0})


def old_finished_job() -> Job:
    job = Job.objects.create(operation="core.echo_job", params={}, channel="web", status=Job.SUCCEEDED)
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(days=40))
    return job


def test_the_request_stores_the_plan_and_votes_record_its_hash(make_user, actor_of):
    old_finished_job()
    approval = invoke("core.purge_jobs", actor_of(make_user("operator")), {"older_than_days": 30}).approval
    approval.refresh_from_db()
    assert approval.plan == {
        "summary": "Delete the finished jobs (and their logs) older than 30 days.", "older_than_days": 30, "jobs": 1,
    }  # fmt: skip
    assert approval.plan_hash == plans.plan_hash(approval.plan)
    services.vote(approval.pk, actor_of(make_user("approver")), "approve", plan_hash=approval.plan_hash)
    assert ApprovalVote.objects.get(request=approval).plan_hash == approval.plan_hash


def test_a_vote_on_another_plan_is_refused(make_user, actor_of, client):
    approval = invoke("core.purge_jobs", actor_of(make_user("operator")), {"older_than_days": 30}).approval
    client.force_login(make_user("approver"))
    page = client.get(f"/approvals/{approval.pk}/")
    assert f'name="plan_hash" value="{approval.plan_hash}"' in page.content.decode()
    for other in ({"plan_hash": "0" * 64}, {}):  # another plan, or a post that names none (not the page's form)
        response = client.post(f"/approvals/{approval.pk}/vote/", {"decision": "approve", **other}, follow=True)
        assert "reload the page and review it again" in response.content.decode()
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "pending" and not ApprovalVote.objects.exists()


def test_state_changed_after_approval_ends_drifted_and_nothing_runs(make_user, actor_of, client):
    requester = make_user("operator")
    approval = invoke("core.purge_jobs", actor_of(requester), {"older_than_days": 30}).approval  # plan: 0 jobs
    services.vote(approval.pk, actor_of(make_user("approver")), "approve")
    kept = old_finished_job()  # after approval, the purge would now delete a job nobody approved deleting
    job = Job.objects.get(approval_id=approval.pk)
    run_job(str(job.pk))

    job.refresh_from_db()
    approval.refresh_from_db()
    assert approval.status == "drifted" and approval.drifted_plan["jobs"] == 1
    assert job.status == "failed" and "drifted" in job.error
    assert Job.objects.filter(pk=kept.pk).exists()
    event = AuditEvent.objects.get(operation="approvals.drifted")
    assert (event.outcome, event.approval_id, event.actor) == ("denied", str(approval.pk), requester.username)
    assert event.params["changed"] == ["- jobs: 0", "+ jobs: 1"]
    assert AuditEvent.objects.get(operation="core.purge_jobs", channel="worker").outcome == "denied"
    note = Notification.objects.get(user=requester, text__contains="did not run")
    assert "- jobs: 0; + jobs: 1" in note.text
    client.force_login(requester)
    page = client.get(note.link).content.decode()
    assert 'id="plan-drift"' in page and '<tr class="removed"><td class="sign">−</td><td>jobs: 0</td></tr>' in page
    # Final: nobody can vote on it again, and its job does not run again.
    with pytest.raises(services.ApprovalError, match="final"):
        services.vote(approval.pk, actor_of(make_user("approver")), "approve")


# --- runbooks: the argv is what was approved, and it runs once -------------------------------


@pytest.fixture
def runbook(tmp_path, make_user, actor_of):
    peers.require_binary("prlimit")
    admin = actor_of(make_user("admin"))

    def save(script: str):
        params = {"name": "append", "argv": ["/bin/sh", "-c", script], "working_dir": str(tmp_path), "risky": True}
        outcome = invoke("infrastructure.save_runbook", admin, params)
        if outcome.status == "pending":  # a risky runbook's new argv is a guard change: another person approves it
            services.vote(outcome.approval.pk, actor_of(make_user("approver")), "approve")
            run_job(str(Job.objects.get(approval_id=outcome.approval.pk).pk))

    save("echo ran >> ran.log")
    save.log = Path(tmp_path) / "ran.log"
    return save


def test_runbook_argv_changed_after_the_request_ends_drifted_and_nothing_runs(runbook, make_user, actor_of):
    requester = actor_of(make_user("operator"))
    approval = invoke("infrastructure.run_runbook", requester, {"runbook": "append"}, reason="rotate logs").approval
    assert approval.plan["argv"] == ["/bin/sh", "-c", "echo ran >> ran.log"]
    runbook("echo ran >> ran.log; touch pwned")  # changed while the request waits
    services.vote(approval.pk, actor_of(make_user("approver")), "approve")
    job = Job.objects.get(approval_id=approval.pk)
    run_job(str(job.pk))

    approval.refresh_from_db()
    assert approval.status == "drifted" and Job.objects.get(pk=job.pk).status == "failed"
    assert not runbook.log.exists() and not (runbook.log.parent / "pwned").exists()
    assert '+ argv[2]: "echo ran >> ran.log; touch pwned"' in AuditEvent.objects.get(operation="approvals.drifted").params["changed"]


@pytest.mark.django_db(transaction=True)
def test_a_redelivered_or_second_job_never_runs_an_approval_twice(runbook, make_user, actor_of, celery_worker):
    requester = actor_of(make_user("operator"))
    approval = invoke("infrastructure.run_runbook", requester, {"runbook": "append"}).approval
    services.vote(approval.pk, actor_of(make_user("approver")), "approve")
    first = Job.objects.get(approval_id=approval.pk)
    assert wait_for(lambda: Job.objects.get(pk=first.pk).finished), celery_worker.tail()
    assert Job.objects.get(pk=first.pk).status == "succeeded" and runbook.log.read_text() == "ran\n"

    # A redelivery (e.g. a lease reaper putting the job back) and a second enqueue of the same approval.
    Job.objects.filter(pk=first.pk).update(status=Job.QUEUED, finished_at=None)
    from apps.core.tasks import run_job as task

    task.apply_async(args=[str(first.pk)])
    op = operations.get("infrastructure.run_runbook")
    second = jobs.enqueue(op, op.input.model_validate(approval.params), actor=requester, channel="web", approval=approval)
    assert set(approval.jobs.values_list("pk", flat=True)) == {first.pk, second.pk}  # both are runs of the request
    assert wait_for(lambda: all(Job.objects.get(pk=j.pk).finished for j in (first, second))), celery_worker.tail()

    assert runbook.log.read_text() == "ran\n"  # ran once, whatever was delivered
    for job in Job.objects.filter(pk__in=[first.pk, second.pk]):
        assert job.status == "failed" and "runs at most once" in job.error
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "approved"


def test_a_break_glass_job_acknowledged_before_a_worker_took_it_still_runs_once(runbook, make_user, actor_of):
    admin = actor_of(make_user("admin"))
    outcome = invoke("infrastructure.run_runbook", admin, {"runbook": "append"}, reason="queue on fire", break_glass=True)
    review = ApprovalRequest.objects.get(jobs=outcome.job)  # approvals' link to the job that runs it
    for _ in range(2):  # a busy queue: both acknowledgements land before the job starts
        breakglass.acknowledge(review.pk, actor_of(make_user("approver")))
    assert ApprovalRequest.objects.get(pk=review.pk).status == "reviewed"
    run_job(str(outcome.job.pk))
    assert Job.objects.get(pk=outcome.job.pk).status == "succeeded" and runbook.log.read_text() == "ran\n"

    Job.objects.filter(pk=outcome.job.pk).update(status=Job.QUEUED, finished_at=None)  # redelivered
    run_job(str(outcome.job.pk))
    assert "runs at most once" in Job.objects.get(pk=outcome.job.pk).error and runbook.log.read_text() == "ran\n"
