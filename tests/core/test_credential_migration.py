"""Migrations core 0004 and approvals 0004: the API-token foreign key of jobs and approval requests becomes the
credential reference ("api:<pk>") and its scopes, and back (apps/core/migrations/_credential.py)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.support.migrations import at_state, migrate

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("core", "0003_search_permission"), ("approvals", "0003_group_quorum")]
AFTER = [("core", "0004_credential"), ("approvals", "0004_credential")]


@pytest.fixture
def at_the_token_foreign_key():
    """The schema before the migrations; the latest one again after the test."""
    yield from at_state(BEFORE)


def test_a_token_foreign_key_becomes_its_credential_reference_and_back(at_the_token_foreign_key, make_user):
    apps = at_the_token_foreign_key
    user = apps.get_model("auth", "User").objects.get(pk=make_user("operator").pk)
    token = apps.get_model("accounts", "ApiToken").objects.create(user=user, name="ci", lookup="abc123", digest="0" * 64,
                                                                  scopes=["operator"])  # fmt: skip
    Job, Approval = apps.get_model("core", "Job"), apps.get_model("approvals", "ApprovalRequest")
    through_token = Job.objects.create(operation="core.echo_job", params={}, channel="mcp", requested_by=user, token=token)
    in_person = Job.objects.create(operation="core.echo_job", params={}, channel="web", requested_by=user)
    request = Approval.objects.create(operation="core.purge_jobs", params={}, requested_by=user, token=token, channel="mcp",
                                      expires_at=timezone.now() + timedelta(hours=1))  # fmt: skip

    apps = migrate(AFTER)
    Job, Approval = apps.get_model("core", "Job"), apps.get_model("approvals", "ApprovalRequest")
    assert Job.objects.values("credential", "scopes").get(pk=through_token.pk) == {"credential": f"api:{token.pk}", "scopes": ["operator"]}
    assert Job.objects.values("credential", "scopes").get(pk=in_person.pk) == {"credential": "", "scopes": []}
    assert Approval.objects.get(pk=request.pk).credential == f"api:{token.pk}"
    agents = Job.objects.create(operation="core.echo_job", params={}, channel="mcp", requested_by_id=user.pk, credential="oauth:7")

    apps = migrate(BEFORE)
    Job, Approval = apps.get_model("core", "Job"), apps.get_model("approvals", "ApprovalRequest")
    assert Job.objects.get(pk=through_token.pk).token_id == token.pk
    assert Approval.objects.get(pk=request.pk).token_id == token.pk
    assert Job.objects.get(pk=in_person.pk).token_id is None
    assert Job.objects.get(pk=agents.pk).token_id is None  # an agent's reference has no place in the token foreign key
