"""In Chromium: acknowledging an incident updates the timeline live, both on the
acknowledger's page (no reload) and on another person's open page."""

import pytest

from apps.comms import incidents
from apps.comms.incidents import AlertIn
from apps.comms.models import RoutingRule

# Set by the htmx ws extension's open event: the page is subscribed before anything happens.
WS_OPEN = "document.addEventListener('htmx:wsOpen', () => { window.wsOpen = true; });"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_acknowledge_and_watch_the_timeline_update_live(browser, login_page, make_user, console_server, connectors):
    RoutingRule.objects.create(name="default", is_default=True, targets=["ops-slack"])
    incident = incidents.receive_alert(AlertIn(type="DiskFull", severity="critical", title="db-1 disk 97%", service="db"), "t").incident
    url = f"{console_server}/comms/incidents/{incident.pk}/"

    # Someone else watches the same incident in another browser context.
    watcher_context = browser.new_context()
    watcher_context.add_init_script(WS_OPEN)
    watcher = watcher_context.new_page()
    viewer = make_user("viewer")
    watcher.goto(console_server + "/accounts/login/")
    watcher.fill("input[name=username]", viewer.username)
    watcher.fill("input[name=password]", viewer.raw_password)
    watcher.click("main button[type=submit]")
    watcher.wait_for_url(console_server + "/")
    watcher.goto(url)
    watcher.wait_for_function("() => window.wsOpen === true")

    page = login_page(make_user("operator"))
    page.context.add_init_script(WS_OPEN)
    page.goto(url)
    page.wait_for_function("() => window.wsOpen === true")
    assert page.inner_text("#incident-state") == "open"
    page.click("#ack-button")
    page.wait_for_selector("#timeline .timeline-entry.ack:has-text('Acknowledged by')")
    page.wait_for_selector("#incident-state:has-text('acknowledged')")
    assert page.url == url  # no reload: the entry came over the websocket

    watcher.wait_for_selector("#timeline .timeline-entry.ack:has-text('Acknowledged by')")
    assert watcher.inner_text("#incident-state") == "acknowledged"
    watcher_context.close()
