"""A newcomer's first five minutes, in Chromium, on the demo `seed_demo` builds
with no network (images built locally on the engine, no registry): log in as
operator, deploy to staging, request a production deploy, approve it as
approver, watch it live to success, find it in the audit log as auditor."""

import re

import pytest

from apps.infrastructure.models import Deployment, Environment

from .conftest import endpoint, log_in, version_at

pytestmark = [pytest.mark.browser, pytest.mark.peer]


@pytest.mark.django_db(transaction=True)
def test_newcomer_deploys_the_demo_offline(browser, console_server, celery_worker, demo, actor_of, django_user_model):
    assert "demo images built locally" in demo.output, demo.output
    passwords, staging, production = demo.passwords, demo.staging, demo.production
    operator = log_in(browser, console_server, "operator", passwords["operator"])
    operator.get_by_role("link", name="Infrastructure").first.click()
    operator.click(f"a[href='/infrastructure/{staging}/web/']")
    operator.click("#deploy-form button[type=submit]")
    operator.wait_for_url(re.compile(r".*/infrastructure/deployments/\d+/$"))
    operator.wait_for_selector("#deployment-state:has-text('succeeded')", timeout=90000)
    operator_actor = actor_of(django_user_model.objects.get(username="operator"))
    assert version_at(endpoint(operator_actor, Environment.objects.get(name=staging))) == "v1"

    operator.goto(f"{console_server}/infrastructure/{production}/web/")
    operator.fill("#deploy-form textarea[name=reason]", "first production release")
    operator.click("#deploy-form button[type=submit]")
    operator.wait_for_url(re.compile(r".*/infrastructure/deployments/\d+/$"))
    assert operator.inner_text("#deployment-state") == "pending approval"
    deployment = Deployment.objects.get(service__environment__name=production)

    approver = log_in(browser, console_server, "approver", passwords["approver"])
    assert approver.inner_text("#nav-approvals") == "1"  # the one request waiting for this approver's vote
    approver.click("nav a[href='/approvals/']")
    approver.click(f"a[href='/approvals/{deployment.approval_id}/']")
    assert "first production release" in approver.inner_text("#approval-reason")
    approver.click("#vote-form button[value=approve]")
    approver.wait_for_selector("text=Your approve vote")
    approver.context.close()

    # The operator's page, never reloaded, follows the canary over the websocket.
    operator.wait_for_selector("#deployment-log .line:has-text('approved by approver; queued')", timeout=30000)
    operator.wait_for_selector("#deployment-state:has-text('succeeded')", timeout=120000)
    operator.context.close()

    auditor = log_in(browser, console_server, "auditor", passwords["auditor"])
    auditor.click("nav a[href='/audit/']")
    auditor.get_by_label("Operation").fill("infrastructure.deploy")
    auditor.get_by_label("Target").fill(production)
    auditor.click("form.filters button[type=submit]")
    rows = auditor.locator("#audit-rows tr").all_inner_texts()
    assert any("infrastructure.deploy" in row and "pending" in row and "operator" in row for row in rows), rows
    auditor.context.close()
