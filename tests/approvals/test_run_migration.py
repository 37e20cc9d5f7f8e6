"""Migrations core 0005 and approvals 0006: a job's foreign key up into approvals becomes the request's number
(core) and an ApprovalRun row (approvals), and back."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.support.migrations import at_state, migrate

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("core", "0004_credential"), ("approvals", "0005_withdrawn")]
AFTER = [("core", "0005_job_approval_number"), ("approvals", "0006_approval_run")]


@pytest.fixture
def at_the_approval_foreign_key():
    """The schema before the migrations; the latest one again after the test."""
    yield from at_state(BEFORE)


def test_a_jobs_approval_becomes_a_run_of_the_request_and_back(at_the_approval_foreign_key, make_user):
    apps = at_the_approval_foreign_key
    user = apps.get_model("auth", "User").objects.get(pk=make_user("operator").pk)
    Job, Approval = apps.get_model("core", "Job"), apps.get_model("approvals", "ApprovalRequest")
    request = Approval.objects.create(operation="core.purge_jobs", params={}, requested_by=user, channel="web",
                                      expires_at=timezone.now() + timedelta(hours=1))  # fmt: skip
    first = Job.objects.create(operation="core.purge_jobs", params={}, channel="web", requested_by=user, approval=request)
    second = Job.objects.create(operation="core.purge_jobs", params={}, channel="web", requested_by=user, approval=request)
    unapproved = Job.objects.create(operation="core.echo_job", params={}, channel="web", requested_by=user)

    apps = migrate(AFTER)
    Job, Approval = apps.get_model("core", "Job"), apps.get_model("approvals", "ApprovalRequest")
    Run = apps.get_model("approvals", "ApprovalRun")
    assert set(Run.objects.values_list("request_id", "job_id")) == {(request.pk, first.pk), (request.pk, second.pk)}
    assert set(Approval.objects.get(pk=request.pk).jobs.values_list("pk", flat=True)) == {first.pk, second.pk}
    assert dict(Job.objects.values_list("pk", "approval_id")) == {first.pk: request.pk, second.pk: request.pk, unapproved.pk: None}
    Job.objects.filter(pk=second.pk).delete()  # a purged job takes its run along
    assert list(Run.objects.values_list("job_id", flat=True)) == [first.pk]
    third = Job.objects.create(operation="core.purge_jobs", params={}, channel="web", approval_id=request.pk)
    Run.objects.create(request_id=request.pk, job=third)

    apps = migrate(BEFORE)
    Job = apps.get_model("core", "Job")
    assert dict(Job.objects.values_list("pk", "approval_id")) == {first.pk: request.pk, third.pk: request.pk, unapproved.pk: None}
    assert Job.objects.get(pk=third.pk).approval.pk == request.pk
