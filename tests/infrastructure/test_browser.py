"""In Chromium: an operator requests a deploy to a protected environment, an
approver approves it in another session, and the operator's page (never
reloaded) follows the deployment's log live to success; a real worker runs it."""

import re

import pytest

from apps.core.gateway import invoke
from apps.infrastructure.models import Deployment, Environment

from .conftest import HTTPD, RUN, endpoint, version_at

pytestmark = [pytest.mark.browser, pytest.mark.peer]


@pytest.mark.django_db(transaction=True)
def test_protected_deploy_requested_approved_and_watched_live(
    browser, login_page, console_server, celery_worker, podman, images, make_user, actor_of
):
    env = Environment.objects.create(name=f"{RUN}-live", engine_url=podman.url, router_image=images.router, protected=True, quorum=1)
    operator, approver = make_user("operator"), make_user("approver")
    invoke("infrastructure.save_service", actor_of(operator), {
        "environment": env.name, "name": "shop", "image": images.web["v1"], "command": HTTPD, "replicas": 2,
        "ports": [{"container": 8080}], "healthcheck": {"path": "/version", "interval_seconds": 0.1},
        "strategy": "blue_green", "strategy_options": {"keep_old_seconds": 0},
    })  # fmt: skip
    try:
        page = login_page(operator)
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto(f"{console_server}/infrastructure/{env.name}/shop/")
        page.fill("#deploy-form textarea[name=reason]", "first release of the shop")
        page.click("#deploy-form button[type=submit]")
        page.wait_for_url(re.compile(r".*/infrastructure/deployments/\d+/$"))
        assert page.inner_text("#deployment-state") == "pending approval"
        deployment = Deployment.objects.get()
        page.wait_for_selector(f"#deployment-log .line:has-text('waiting for approval (request #{deployment.approval_id}')")

        other = browser.new_context(viewport={"width": 1280, "height": 900})
        approver_page = other.new_page()
        approver_page.goto(f"{console_server}/accounts/login/")
        approver_page.fill("input[name=username]", approver.username)
        approver_page.fill("input[name=password]", approver.raw_password)
        approver_page.click("main button[type=submit]")
        approver_page.wait_for_url(console_server + "/")
        approver_page.goto(f"{console_server}/approvals/{deployment.approval_id}/")
        assert "first release of the shop" in approver_page.inner_text("main")
        approver_page.click("#vote-form button[value=approve]")
        approver_page.wait_for_selector("text=Your approve vote")
        other.close()

        # What follows reaches the operator's page over the websocket.
        page.wait_for_selector(f"#deployment-log .line:has-text('approved by {approver.username}; queued')", timeout=30000)
        page.wait_for_selector("#deployment-log .line:has-text('traffic → r1 (blue) ×2')", timeout=60000)
        page.wait_for_selector("#deployment-state:has-text('succeeded')", timeout=60000)
        assert "succeeded: r1 serves on" in page.inner_text("#deployment-log")
        assert approver.username in page.inner_text("#deployment-status")
        assert version_at(endpoint(actor_of(operator), env, "shop")) == "v1"
    finally:
        podman.remove_matching(f"{env.name}-")
