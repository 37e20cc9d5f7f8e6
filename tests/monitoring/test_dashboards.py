"""Dashboards: the built-in ones, the page with its range picker, editing with
panels, and the server-side charts."""

import threading
from datetime import UTC, datetime, timedelta

import pytest

from apps.audit.models import AuditEvent
from apps.core.gateway import invoke
from apps.monitoring import builtin
from apps.monitoring.charts import format_value, level, line_chart
from apps.monitoring.models import Dashboard, Panel, PrometheusSource
from apps.monitoring.services.dashboards import PanelData
from apps.monitoring.services.queries import RangeSeries

from . import peers


@pytest.fixture
def builtins(db):
    builtin.install(Dashboard, Panel)
    return {d.slug: d for d in Dashboard.objects.all()}


def test_builtin_dashboards_query_the_console_and_the_targets(builtins, source, viewer, client_as):
    assert set(builtins) == {"console", "targets"}
    now = datetime.now(UTC).isoformat()  # not live: live data ends on the last 10 s tick, maybe before the first scrapes
    data = invoke("monitoring.dashboard", viewer, {"dashboard": "targets", "range": "5m", "end": now}).result
    panels = {p.title: p for p in data.panels}
    assert data.source_status == "up" and all(not p.error for p in data.panels)
    assert panels["Targets down"].values[0].value == 1.0  # the "dead" job
    assert panels["Targets up"].values[0].value == 3.0
    assert {s.labels["job"]: s.value for s in panels["Up by job"].values}["dead"] == 0.0
    console = invoke("monitoring.dashboard", viewer, {"dashboard": "console", "range": "15m"}).result
    assert console.source_status == "up" and [p.error for p in console.panels] == [""] * 8
    assert console.live and console.end.timestamp() % 10 == 0 and console.step_seconds == 4  # 15 min in ~240 points


def test_dashboard_page_live_and_absolute(builtins, source, client_as, django_assert_max_num_queries):
    client = client_as("viewer")
    with django_assert_max_num_queries(15):
        response = client.get("/monitoring/dashboards/targets/?range=15m")
    page = response.content.decode()
    assert response.status_code == 200
    assert f'ws-connect="/ws/dashboards/dashboard.{builtins["targets"].pk}.15m/"' in page
    assert "source default up" in page and "live, every 10 s" in page
    assert page.count('class="panel chart-panel') == 6 and "<svg" in page
    end = (datetime.now(UTC) - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M")
    old = client.get(f"/monitoring/dashboards/targets/?range=5m&end={end}").content.decode()
    assert "/ws/dashboards/" not in old and "live, every" not in old and end[11:16] in old


def test_a_bad_panel_shows_its_error_and_the_others_still_draw(source, client_as):
    board = Dashboard.objects.create(slug="mixed", title="Mixed", source=source, refresh_seconds=1)
    Panel.objects.create(dashboard=board, position=0, title="Broken", query="rate(up[", chart="line")
    Panel.objects.create(dashboard=board, position=1, title="Queue", query="demo_queue_depth", chart="stat", warning=5, critical=10)
    page = client_as("viewer").get(board.get_absolute_url()).content.decode()
    assert '<div class="panel-error">Prometheus rejected the request (bad_data):' in page
    assert '<div class="stat level-warning">7</div>' in page


def test_no_source_is_an_explained_page(db, client_as):
    Dashboard.objects.create(slug="lonely", title="Lonely")
    response = client_as("viewer").get("/monitoring/dashboards/lonely/")
    assert response.status_code == 200 and "no Prometheus source named &#x27;default&#x27;" in response.content.decode()


def test_editing_a_dashboard_with_panels(source, client_as, make_user):
    viewer = client_as("viewer")
    assert viewer.get("/monitoring/dashboards/new/").status_code == 403
    client = client_as("operator")
    form = {
        "title": "Queue",
        "slug": "queue",
        "description": "",
        "source": source.pk,
        "refresh_seconds": "5",
        "default_range": "15m",
        "panels-TOTAL_FORMS": "1",
        "panels-INITIAL_FORMS": "0",
        "panels-MIN_NUM_FORMS": "0",
        "panels-MAX_NUM_FORMS": "24",
        "panels-0-position": "0",
        "panels-0-title": "Depth",
        "panels-0-query": "demo_queue_depth",
        "panels-0-chart": "stat",
        "panels-0-unit": "",
        "panels-0-warning": "5",
        "panels-0-critical": "",
        "panels-0-legend": "",
    }
    response = client.post("/monitoring/dashboards/new/", form)
    assert response.status_code == 302 and response["Location"] == "/monitoring/dashboards/queue/"
    board = Dashboard.objects.get(slug="queue")
    assert [(p.title, p.chart, p.warning) for p in board.panels.all()] == [("Depth", "stat", 5.0)]
    assert AuditEvent.objects.get(operation="monitoring.save_dashboard").target == "queue"
    bad = client.post("/monitoring/dashboards/new/", {**form, "slug": "queue", "refresh_seconds": "0"})
    assert bad.status_code == 422 and "slug" in bad.context["form"].errors and "refresh_seconds" in bad.context["form"].errors
    assert client.post("/monitoring/dashboards/queue/delete/").status_code == 302
    assert not Dashboard.objects.filter(slug="queue").exists()


def panel(points, **extra):
    return PanelData(
        id=1,
        title="t",
        chart="line",
        unit=extra.pop("unit", ""),
        warning=extra.pop("warning", None),
        critical=extra.pop("critical", None),
        legend=[],
        series=[RangeSeries(labels={"job": "a"}, points=points)],
    )


def test_line_chart_geometry_with_a_gap_and_thresholds():
    start = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    t0 = start.timestamp()
    points = [(t0, 0.0), (t0 + 60, 5.0), (t0 + 120, None), (t0 + 180, 10.0), (t0 + 240, 8.0)]
    chart = line_chart(panel(points, warning=6.0, critical=9.0), start, start + timedelta(minutes=4))
    (series,) = chart.series
    assert series.d == "M52.0,150.0 L142.0,79.0 M322.0,8.0 L412.0,36.4"  # the gap splits the line
    assert series.last == "8" and series.name == "job=a"
    assert [label for _, label in chart.y_ticks] == ["0", "5", "10"]
    assert [(name, label) for _, name, label in chart.thresholds] == [("warning", "6"), ("critical", "9")]
    assert [label for _, label in chart.x_ticks] == ["12:00", "12:01", "12:02", "12:03", "12:04"]
    assert line_chart(panel([(t0, None)]), start, start + timedelta(minutes=4)).empty


def test_value_formatting_and_levels():
    assert format_value(0.000123, "seconds") == "123 µs"
    assert format_value(0.25, "seconds") == "250 ms"
    assert format_value(3 * 2**30, "bytes") == "3 GiB"
    assert format_value(0.973, "ratio") == "97.3%"
    assert format_value(12345, "per_second") == "12.3k/s"
    assert format_value(None) == "—"
    assert level(7, 5, 10) == "warning" and level(12, 5, 10) == "critical" and level(1, 5, 10) == "ok" and level(1, None, None) == "none"


class HoldingGate(peers.Gate):
    """Holds each query until `together` are in flight, then lets them all through, and records the most
    in flight at once (until each is answered upstream). Queries made one after another never fill it:
    after 20 s it stops holding."""

    together = Dashboard.MAX_PANELS
    in_flight = most = 0
    opened = False
    changed = threading.Condition()

    def admit(self) -> bool:
        gate = type(self)
        with gate.changed:
            gate.in_flight += 1
            gate.most = max(gate.most, gate.in_flight)
            gate.opened = gate.opened or gate.in_flight >= gate.together
            gate.changed.notify_all()
            gate.changed.wait_for(lambda: gate.opened, timeout=20)
            gate.opened = True
        return True

    def reply(self, answer) -> None:
        with self.changed:  # before the caller can send its next query
            type(self).in_flight -= 1
        super().reply(answer)


def test_every_panel_of_the_largest_dashboard_is_queried_at_once(db, prometheus, viewer):
    """A render costs about its slowest panel, not the sum and not one slowest panel per wave: the
    queries of a dashboard with the most panels the editor allows are all in flight together."""
    from apps.core.resilience import forget_breaker

    HoldingGate.upstream, HoldingGate.in_flight, HoldingGate.most, HoldingGate.opened = prometheus.url, 0, 0, False
    url, server = peers.serve_gate(HoldingGate)
    forget_breaker("prometheus:held")
    try:
        source = PrometheusSource.objects.create(name="held", base_url=url, timeout_seconds=30)
        board = Dashboard.objects.create(slug="wide", title="Wide", source=source)
        for position in range(Dashboard.MAX_PANELS):
            Panel.objects.create(dashboard=board, position=position, title=f"Up {position}", query="up", chart="stat")
        data = invoke("monitoring.dashboard", viewer, {"dashboard": "wide", "end": datetime.now(UTC).isoformat()}).result
    finally:
        server.shutdown()
    assert [p.error for p in data.panels] == [""] * Dashboard.MAX_PANELS
    assert HoldingGate.most == Dashboard.MAX_PANELS
