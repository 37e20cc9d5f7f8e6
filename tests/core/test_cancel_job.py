"""Cancel on the job page is the operation core.cancel_job: role-checked and audited with who cancelled
which job, as an agent's core_cancel_job tool call is (tests/mcp/test_approvals_and_jobs.py)."""

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.models import Job

pytestmark = pytest.mark.django_db


def queued(user, **fields) -> Job:
    return Job.objects.create(operation="core.echo_job", params={"steps": 1}, channel="web", requested_by=user, **fields)


def cancel_on_the_page(client, job: Job) -> str:
    response = client.post(f"/jobs/{job.pk}/cancel/", follow=True)
    assert response.status_code == 200
    job.refresh_from_db()
    return response.content.decode()


def test_cancelling_a_queued_job_on_its_page_is_an_audited_operation(client_as):
    client = client_as("operator")
    job = queued(client.user)
    assert "Cancelled." in cancel_on_the_page(client, job)
    assert (job.status, job.cancel_requested, job.message) == (Job.CANCELLED, True, "cancelled before it started")
    event = AuditEvent.objects.get(operation="core.cancel_job")
    assert (event.outcome, event.channel, event.actor, event.target) == ("ok", "web", client.user.username, f"job {job.pk}")
    assert event.params == {"job_id": str(job.pk)}


def test_cancelling_a_running_job_asks_it_to_stop_at_its_next_progress_report(client_as):
    client = client_as("operator")
    job = queued(client.user, status=Job.RUNNING, worker="elsewhere:1", heartbeat_at=timezone.now(), started_at=timezone.now())
    assert "it stops at its next progress report" in cancel_on_the_page(client, job)
    assert (job.status, job.cancel_requested) == (Job.RUNNING, True)


def test_a_viewer_cannot_cancel_a_job_and_the_refusal_is_audited(client_as, make_user):
    job = queued(make_user("operator"))
    viewer = client_as("viewer")
    assert viewer.post(f"/jobs/{job.pk}/cancel/").status_code == 403
    job.refresh_from_db()
    assert (job.status, job.cancel_requested) == (Job.QUEUED, False)
    event = AuditEvent.objects.get(operation="core.cancel_job")
    assert (event.outcome, event.actor) == ("denied", viewer.user.username)
    assert "core.run_write_ops" in event.error


@pytest.mark.parametrize("status", Job.FINISHED)
def test_a_finished_job_is_left_as_it_is(client_as, status):
    client = client_as("operator")
    job = queued(client.user, status=status, message="done", finished_at=timezone.now())
    page = cancel_on_the_page(client, job)
    assert f"The job had already {'been ' if status == Job.CANCELLED else ''}{status}: nothing to cancel." in page
    assert (job.status, job.cancel_requested, job.message) == (status, False, "done")
    assert AuditEvent.objects.get(operation="core.cancel_job").outcome == "failed"


def test_cancel_of_a_job_that_does_not_exist_is_a_not_found_page(client_as):
    client = client_as("operator")
    assert client.post("/jobs/00000000-0000-0000-0000-000000000000/cancel/").status_code == 404


@pytest.mark.parametrize(("role", "offered"), [("operator", True), ("viewer", False)])
def test_the_cancel_button_is_offered_to_whom_the_operation_allows(client_as, role, offered):
    client = client_as(role)
    job = queued(client.user)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert (f"/jobs/{job.pk}/cancel/" in page) is offered


def test_one_apps_failing_job_ended_hook_does_not_keep_the_others_from_settling(client_as, caplog):
    """hooks.job_ended: every app settles what it keeps about a job that ended; one hook that raises is logged,
    and neither the others nor the cancel itself are undone by it."""
    from apps.core import hooks

    settled = []

    def broken(job):
        raise RuntimeError("a bug in one app")

    client = client_as("operator")
    job = queued(client.user)
    saved = dict(hooks._job_ended)
    hooks._job_ended.clear()
    hooks.on_job_ended("first", broken)
    hooks.on_job_ended("second", lambda ended: settled.append(ended.pk))
    try:
        assert "Cancelled." in cancel_on_the_page(client, job)
    finally:
        hooks._job_ended.clear()
        hooks._job_ended.update(saved)
    assert settled == [job.pk] and job.status == Job.CANCELLED
    assert AuditEvent.objects.get(operation="core.cancel_job").outcome == "ok"
    assert "the first hook failed" in caplog.text
