"""The search box (`core.search` through the gateway) and the badges: each role finds
only what it may open, by name or id; the approvals badge counts what waits for *your* vote."""

import pytest

from apps.approvals import services as approvals
from apps.approvals.models import ApprovalPolicy
from apps.audit.models import AuditEvent
from apps.comms.models import Incident
from apps.core.gateway import invoke
from apps.infrastructure.models import Environment, Service

pytestmark = pytest.mark.django_db


@pytest.fixture
def things(make_user, actor_of):
    env = Environment.objects.create(name="searchable-env", engine_url="unix:///nonexistent.sock")
    Service.objects.create(environment=env, name="checkout", spec={"image": "x:1"})
    incident = Incident.objects.create(title="checkout latency above 2 s", group_key="k1", service="checkout")
    approval = invoke("core.purge_jobs", actor_of(make_user("operator")), {"older_than_days": 30}).approval
    return {"incident": incident, "approval": approval}


def hits(client, q):
    response = client.get("/search/", {"q": q})
    assert response.status_code == 200
    return response.content.decode()


def test_a_viewer_finds_services_incidents_and_approvals_by_name_or_id(client_as, things):
    client = client_as("viewer")
    page = hits(client, "checkout")
    assert 'href="/infrastructure/searchable-env/checkout/"' in page
    assert f'href="/comms/incidents/{things["incident"].pk}/"' in page
    page = hits(client, f"#{things['approval'].pk}")
    assert f'href="/approvals/{things["approval"].pk}/"' in page
    assert "/audit/" not in page.split("<main", 1)[1]  # a viewer may not open audit events: none shown
    search = AuditEvent.objects.filter(operation="core.search").latest("seq")
    assert search.outcome == "ok" and search.target == f"#{things['approval'].pk}"


def test_an_auditor_finds_audit_events_and_nothing_else(client_as, things):
    client = client_as("auditor")
    page = hits(client, "checkout")
    assert "/infrastructure/searchable-env/checkout/" not in page and "/comms/incidents/" not in page
    event = AuditEvent.objects.filter(operation="core.purge_jobs").latest("seq")
    assert f'href="/audit/{event.seq}/"' in hits(client, str(event.seq))


def test_nothing_found_says_so(client_as, things):
    assert "Nothing found" in hits(client_as("viewer"), "no-such-thing-anywhere")


def test_the_approvals_badge_counts_requests_you_can_still_vote_on(client, make_user, actor_of):
    ApprovalPolicy.objects.update_or_create(operation="core.purge_jobs", scope="", defaults={"quorum": 2})
    operator, approver, other = make_user("operator", "approver"), make_user("approver"), make_user("operator")
    invoke("core.purge_jobs", actor_of(operator), {"older_than_days": 30})
    invoke("core.purge_jobs", actor_of(other), {"older_than_days": 31})
    voted = invoke("core.purge_jobs", actor_of(other), {"older_than_days": 32}).approval
    approvals.vote(voted.pk, actor_of(approver), "approve")  # one of two votes: still pending

    def badge(user):
        client.force_login(user)
        return client.get("/").context["nav_pending_approvals"]

    assert badge(operator) == 2  # not their own request
    assert badge(approver) == 2  # not the one already voted on
    assert badge(make_user("approver")) == 3
    assert badge(other) == 0  # an operator without the approver role votes on nothing
