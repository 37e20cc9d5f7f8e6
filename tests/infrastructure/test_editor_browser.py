"""In Chromium: an admin edits a protected environment from the overview — the editor is prefilled,
unticking "Protected" and lowering the quorum shows exactly what changes and that it goes to approval;
confirming lands on the approval request, and the environment is unchanged until someone else approves."""

import pytest

from apps.core.gateway import invoke
from apps.infrastructure.models import Environment

pytestmark = [pytest.mark.browser, pytest.mark.peer]


@pytest.mark.django_db(transaction=True)
def test_editing_an_environment_shows_what_changes(login_page, console_server, make_user, actor_of):
    admin = make_user("admin", "approver")
    params = {"name": "prod", "engine_url": "unix:///run/none.sock", "protected": True, "quorum": 2}
    invoke("infrastructure.save_environment", actor_of(admin), params)

    page = login_page(admin)
    page.goto(f"{console_server}/infrastructure/")
    page.get_by_label("Edit environment prod").click()
    assert page.get_by_label("Protected").is_checked() and page.get_by_label("Approvals required").input_value() == "2"
    page.get_by_label("Protected").uncheck()
    page.get_by_label("Approvals required").fill("1")
    page.get_by_role("button", name="Review changes").click()

    rows = page.locator("#changes tbody tr").evaluate_all("rows => rows.map(r => [...r.cells].map(c => c.textContent).join(' '))")
    assert rows == ["protected yes → no", "approvals required 2 → 1"], rows
    assert "another person must approve" in page.inner_text("#lowers-guard")
    page.get_by_label("Reason for approvers").fill("retiring prod")
    page.get_by_role("button", name="Request approval").click()
    page.wait_for_url(f"{console_server}/approvals/*/")
    assert "retiring prod" in page.inner_text("#approval-reason")
    env = Environment.objects.get(name="prod")
    assert (env.protected, env.quorum) == (True, 2)
