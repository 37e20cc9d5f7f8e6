"""A failed call changes nothing: aborting or promoting a paused canary records the request, then resumes the
deployment through the gateway (infrastructure.resume_deployment, its own call). When that resume is refused (the
caller's rate limit), the abort or promote fails and its request goes with it: no flag stays behind for a later
resume to act on (a later promote must not abort it), no log line says it was asked."""

import pytest

from apps.audit.models import AuditEvent
from apps.core.errors import RateLimited
from apps.core.gateway import invoke
from apps.infrastructure.models import Deployment, Environment, Revision, Service


@pytest.fixture
def paused(db):
    """A canary paused between its steps (rows only: neither call reaches the engine)."""
    env = Environment.objects.create(name="staging", engine_url="unix:///nonexistent/docker.sock")
    service = Service.objects.create(environment=env, name="web", spec={"image": "web:v2"}, strategy="canary")
    revision = Revision.objects.create(service=service, number=2, spec=service.spec)
    return Deployment.objects.create(
        service=service, revision=revision, strategy="canary", status=Deployment.PAUSED, reason="", step=1, step_label="pause"
    )


def state(deployment: Deployment) -> tuple:
    row = Deployment.objects.get(pk=deployment.pk)
    return row.status, row.abort_requested, row.promote_requested, row.reason, list(row.log_lines.values_list("text", flat=True))


@pytest.mark.parametrize("operation", ["infrastructure.abort", "infrastructure.promote"])
def test_a_request_whose_resume_is_refused_changes_nothing(operation, paused, make_user, actor_of, settings):
    settings.OPS_RATE_LIMITS = {**settings.OPS_RATE_LIMITS, "write": "1/m"}  # the call itself is the last one allowed
    operator = actor_of(make_user("operator"))
    before = state(paused)
    with pytest.raises(RateLimited):
        invoke(operation, operator, {"deployment": paused.pk})
    assert state(paused) == before
    events = {e.operation: (e.outcome, e.error) for e in AuditEvent.objects.filter(operation__startswith="infrastructure.")}
    refused = events["infrastructure.resume_deployment"]
    assert refused[0] == "denied" and events[operation] == refused  # the call fails as its resume was refused

    # Once the limit allows it again, the same call goes through as if the refused one had never been.
    settings.OPS_RATE_LIMITS = {**settings.OPS_RATE_LIMITS, "write": "100/m"}
    assert invoke(operation, operator, {"deployment": paused.pk}).result.status == Deployment.QUEUED
    assert len(state(paused)[4]) == 1
