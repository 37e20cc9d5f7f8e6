"""An auditor's pages lead nowhere they are refused, and an event's page shows its
approval request (plan or exact params, reason, votes) read-only — in a real browser
too, where one click on "this flow" lists exactly the events of one approval flow."""

import html
import re

import pytest

from apps.audit.models import AuditEvent

from .flows import approval_flow

HREF = re.compile(r'href="(/[^"]*)"')


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    settings.AUDIT_SINK_OUTBOUND_ALLOW = ["127.0.0.0/8"]


def links(response) -> set[str]:
    return {html.unescape(h) for h in HREF.findall(response.content.decode()) if not h.startswith(("/static/", "/accounts/logout"))}


def test_no_link_on_an_auditors_pages_leads_to_a_403(make_user, actor_of, client_as):
    approval = approval_flow(make_user, actor_of)
    client = client_as("auditor")
    event = AuditEvent.objects.filter(correlation_id=f"approval-{approval.pk}").first()
    pages = ["/", "/audit/", f"/audit/{event.seq}/", f"/audit/?correlation=approval-{approval.pk}"]
    seen = set()
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        for link in links(response) - seen:
            seen.add(link)
            assert client.get(link).status_code != 403, f"{page} links to {link}, which refuses an auditor"
    assert f"/approvals/{approval.pk}/" not in seen and "/jobs/" not in seen and "/approvals/" not in seen


def test_the_event_page_shows_the_approval_read_only(make_user, actor_of, client_as):
    approval = approval_flow(make_user, actor_of)
    event = AuditEvent.objects.filter(correlation_id=f"approval-{approval.pk}", operation="approvals.approve").get()
    page = client_as("auditor").get(f"/audit/{event.seq}/").content.decode()
    panel = page[page.index('id="event-approval"') :]
    assert f"Approval request #{approval.pk}" in panel and "audit.disable_sink" in panel
    assert "ok, token: [redacted] rotated" in panel and "abc123" not in panel
    assert "old password=[redacted] is void" in panel and "hunter2" not in panel
    assert 'id="approval-params"' in panel and "&quot;name&quot;: &quot;siem&quot;" in panel
    assert approval.plan_hash and approval.plan_hash in panel  # the plan the approver voted on ...
    assert 'class="plan-diff' in panel and "enabled: false" in panel  # ... and its before -> after
    assert f"/approvals/{approval.pk}/" not in panel and "<form" not in panel  # read-only, no dead end
    # An admin may open the request itself.
    assert f"/approvals/{approval.pk}/" in client_as("admin").get(f"/audit/{event.seq}/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_browser_auditor_filters_one_approval_flow(make_user, actor_of, login_page, console_server):
    approval = approval_flow(make_user, actor_of)
    approval_flow_other = approval_flow(make_user, actor_of)  # a second flow whose events must not show
    assert approval_flow_other.pk != approval.pk
    flow = sorted(AuditEvent.objects.filter(correlation_id=f"approval-{approval.pk}").values_list("seq", flat=True))
    vote = AuditEvent.objects.get(correlation_id=f"approval-{approval.pk}", operation="approvals.approve")

    page = login_page(make_user("auditor"))
    page.goto(f"{console_server}/audit/{vote.seq}/")
    assert "ok, token: [redacted] rotated" in page.inner_text("#event-approval")
    page.click("#event-flow")
    page.wait_for_url(f"**/audit/?correlation=approval-{approval.pk}")
    shown = sorted(int(row.get_attribute("id").removeprefix("audit-")) for row in page.query_selector_all("#audit-rows tr"))
    assert shown == flow and len(flow) == 3
    # From the list, every row links its own flow: the vote's row gives the same events.
    page.goto(f"{console_server}/audit/?operation=approvals.")
    page.click(f"#audit-{vote.seq} a.flow")
    page.wait_for_url(f"**/audit/?correlation=approval-{approval.pk}")
    assert sorted(int(r.get_attribute("id").removeprefix("audit-")) for r in page.query_selector_all("#audit-rows tr")) == flow
