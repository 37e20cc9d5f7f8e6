"""In a real browser, each role sees what it may and is refused the rest."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def nav_labels(page):
    return page.locator("nav.nav a").all_inner_texts()


def test_operator_sees_operations_not_the_audit_log(login_page, make_user, console_server):
    page = login_page(make_user("operator"))
    labels = [label.split()[0] for label in nav_labels(page)]
    assert "Operations" in labels and "Jobs" in labels and "Audit" not in labels
    assert page.locator("#home-health > p > .pill").inner_text() in {"ok", "degraded"}
    page.goto(console_server + "/operations/")
    assert page.locator("a:has-text('core.echo_job')").count() == 1
    response = page.goto(console_server + "/audit/")
    assert response.status == 403
    assert "does not allow" in page.inner_text("#error-message")


def test_auditor_sees_the_audit_log_and_nothing_else(login_page, make_user, console_server):
    auditor = make_user("auditor")
    page = login_page(auditor)
    assert [label.split()[0] for label in nav_labels(page)] == ["Audit"]
    assert "does not include" in page.inner_text("#home-health")
    page.goto(console_server + "/audit/")
    assert page.locator("#audit-rows tr").count() >= 1  # at least this auditor's own login
    assert page.locator(f"#audit-rows td:has-text('{auditor.username}')").count() >= 1
    assert page.locator("a:has-text('Export CSV')").count() == 1
    assert page.goto(console_server + "/operations/core.echo_job/").status == 403
    assert page.goto(console_server + "/jobs/").status == 403
