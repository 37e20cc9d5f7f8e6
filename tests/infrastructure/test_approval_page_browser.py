"""In Chromium: the approver of a protected deploy sees what will run — the spec's
diff against the revision serving now, the requester's reason, a link to the
service, the plan hash — and approves that plan.

`bin/screenshots` runs this test with OPSCONSOLE_SCREENSHOTS=docs to refresh docs/approval.png.
"""

import os
from pathlib import Path

import pytest

from apps.approvals.models import ApprovalVote
from apps.core.gateway import invoke

from .conftest import deploy, web_service

pytestmark = [pytest.mark.browser, pytest.mark.peer]


@pytest.mark.django_db(transaction=True)
def test_the_approval_page_shows_the_spec_diff(login_page, console_server, podman, images, environment, make_user, actor_of):
    operator = actor_of(make_user("operator"))
    web_service(operator, environment, images, version="v1", replicas=2, env={"MODE": "steady"}, secret_env={"API_TOKEN": "s3cr3t-page"})
    assert deploy(operator, environment).status == "succeeded"
    # The next spec is set before protection (in a protected environment it would itself need approval).
    web_service(operator, environment, images, version="v1", replicas=3, env={"MODE": "steady"}, secret_env={"API_TOKEN": "s3cr3t-page"})
    environment.protected = True
    environment.save()
    params = {"environment": environment.name, "service": "web", "image": images.web["v2"]}
    approval = invoke("infrastructure.deploy", operator, params, reason="ship v2 with a third replica").approval

    page = login_page(make_user("approver"))
    page.goto(f"{console_server}/approvals/{approval.pk}/")
    removed = page.locator("#plan-changes tr.removed").all_inner_texts()
    added = page.locator("#plan-changes tr.added").all_inner_texts()
    assert any(f'image: "{images.web["v1"]}"' in row for row in removed), removed
    assert any(f'image: "{images.web["v2"]}"' in row for row in added), added
    assert any("replicas: 2" in row for row in removed) and any("replicas: 3" in row for row in added)
    assert page.locator("#plan-changes tr.same", has_text='env.MODE: "steady"').count() == 1
    assert "ship v2 with a third replica" in page.inner_text("#approval-reason")
    assert page.get_attribute("a.plan-link", "href") == f"/infrastructure/{environment.name}/web/"
    assert page.inner_text("#plan-hash") == approval.plan_hash
    assert "s3cr3t-page" not in page.content()
    if os.environ.get("OPSCONSOLE_SCREENSHOTS"):
        page.screenshot(path=str(Path(os.environ["OPSCONSOLE_SCREENSHOTS"]) / "approval.png"), full_page=True)

    page.click("#vote-form button[value=approve]")
    page.wait_for_selector("text=Your approve vote")
    assert ApprovalVote.objects.get(request=approval).plan_hash == approval.plan_hash
    assert approval.plan_hash[:12] in page.inner_text("#votes")
