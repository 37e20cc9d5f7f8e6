"""Chromium opens a dashboard and sees its chart and stat change live, pushed
over the websocket by the shared refresh (the page is never reloaded)."""

import time

import pytest

from apps.monitoring.models import Dashboard, Panel

from . import peers


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_dashboard_updates_live_in_the_browser(login_page, make_user, console_server, source):
    board = Dashboard.objects.create(slug="ticks", title="Ticks", source=source, refresh_seconds=1, default_range="5m")
    line = Panel.objects.create(dashboard=board, position=0, title="Tick rate", query="rate(demo_ticks_total[5s])", chart="line")
    # Counted from now: the session's exporter ticks once a second, and past 1000 the stat reads "1.33k".
    ticks = int(float(peers.instant(source.base_url, "demo_ticks_total")[0]["value"][1]))
    stat = Panel.objects.create(dashboard=board, position=1, title="Ticks", query=f"demo_ticks_total - {ticks - 1}", chart="stat")
    page = login_page(make_user("viewer"))
    page.goto(console_server + board.get_absolute_url())
    stat_text = page.inner_text(f"#panel-{stat.pk} .stat")
    path = page.get_attribute(f"#panel-{line.pk} path.line", "d")
    slot = page.get_attribute("#dashboard-status", "data-seq")
    assert int(stat_text) > 0 and path.startswith("M")
    page.evaluate("window.notReloaded = true")

    page.wait_for_function(
        "([sel, before]) => document.querySelector(sel) && document.querySelector(sel).textContent.trim() !== before",
        arg=[f"#panel-{stat.pk} .stat", stat_text],
        timeout=15000,
    )
    assert int(page.inner_text(f"#panel-{stat.pk} .stat")) > int(stat_text)  # the counter grew
    assert page.get_attribute(f"#panel-{line.pk} path.line", "d") != path  # the chart was redrawn with newer points
    assert int(page.get_attribute("#dashboard-status", "data-seq")) > int(slot)
    assert page.evaluate("window.notReloaded") is True  # same document: the update came over the websocket
    assert page.inner_text("#source-state") == "source default up"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_browser_drops_a_fragment_older_than_the_page(login_page, make_user, console_server, source):
    """The page was rendered with slot S; a refresh of slot S-1 that arrives late (its
    socket's first message, so the server has nothing to compare it with) is not shown."""
    from apps.core.live import publish
    from apps.monitoring.refresh import topic_for

    # An hour between ticks: the page's own refresh loop stays asleep; the test plays the publishers.
    board = Dashboard.objects.create(slug="late", title="Late", source=source, refresh_seconds=3600, default_range="5m")
    stat = Panel.objects.create(dashboard=board, position=0, title="Ticks", query="demo_ticks_total", chart="stat")
    page = login_page(make_user("viewer"))
    page.goto(console_server + board.get_absolute_url())
    shown = int(page.get_attribute("#dashboard-status", "data-seq"))
    topic = topic_for(board.pk, "5m")

    def ready():  # an unstamped fragment: the socket is subscribed once one gets through
        publish(topic, f'<section id="panel-{stat.pk}">ready</section>')
        return page.inner_text(f"#panel-{stat.pk}") == "ready"

    deadline = time.monotonic() + 30
    while not ready():
        assert time.monotonic() < deadline, "the page's websocket never subscribed"
        page.wait_for_timeout(200)
    late = f'<div id="dashboard-status" data-seq="{shown - 1}">LATE</div><section id="panel-{stat.pk}">LATE</section>'
    publish(topic, late, seq=shown - 1)
    publish(topic, f'<div id="dashboard-status" data-seq="{shown + 1}">NEWER</div>', seq=shown + 1)
    page.wait_for_selector("#dashboard-status:has-text('NEWER')")
    assert page.inner_text(f"#panel-{stat.pk}") == "ready"  # the late message was dropped whole
