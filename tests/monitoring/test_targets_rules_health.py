"""Targets, rules and the per-job health roll-up on the real Prometheus: the
exporter is up with two firing alerts, the "dead" target is down, the console's
own /metrics is scraped with its bearer token."""

from apps.core.gateway import invoke


def test_targets_with_health_filter(source, viewer, exporter):
    result = invoke("monitoring.targets", viewer, {}).result
    by_job = {t.job: t for t in result.targets}
    assert set(by_job) == {"prometheus", "exporter", "opsconsole", "dead"}
    assert (result.up, result.down) == (3, 1)
    assert by_job["exporter"].health == "up" and by_job["exporter"].instance == f"127.0.0.1:{exporter.port}"
    assert by_job["exporter"].scrape_url == f"http://127.0.0.1:{exporter.port}/metrics"
    assert by_job["opsconsole"].health == "up" and by_job["opsconsole"].last_error == ""  # the token was accepted
    assert "connection refused" in by_job["dead"].last_error
    down = invoke("monitoring.targets", viewer, {"health": "down"}).result.targets
    assert [t.job for t in down] == ["dead"]
    only = invoke("monitoring.targets", viewer, {"job": "exporter"}).result
    assert [t.job for t in only.targets] == ["exporter"] and (only.up, only.down) == (1, 0)


def test_rules_by_type(source, viewer):
    groups = invoke("monitoring.rules", viewer, {}).result.groups
    (group,) = groups
    rules = {r.name: r for r in group.rules}
    assert group.name == "demo" and group.interval_seconds == 1
    assert rules["DemoServiceDown"].state == "firing" and rules["DemoServiceDown"].active_alerts == 1
    assert rules["DemoSlowBurn"].state == "pending" and rules["DemoSlowBurn"].for_seconds == 3600
    assert rules["job:demo_requests:rate1m"].type == "recording" and rules["job:demo_requests:rate1m"].health == "ok"
    recording = invoke("monitoring.rules", viewer, {"type": "record"}).result.groups[0].rules
    assert [r.name for r in recording] == ["job:demo_requests:rate1m"]


def test_health_rolls_up_per_job(source, viewer):
    health = invoke("monitoring.health", viewer, {}).result
    jobs = {j.job: j for j in health.jobs}
    assert health.status == "down" and health.alertmanager == "ok"
    assert health.alerts_firing == {"critical": 1, "warning": 1}
    exporter = jobs["exporter"]
    assert (exporter.status, exporter.targets_up, exporter.targets_down) == ("degraded", 1, 0)
    assert exporter.alerts_firing == {"critical": 1, "warning": 1}
    dead = jobs["dead"]
    assert (dead.status, dead.targets_up, dead.targets_down) == ("down", 0, 1)
    assert len(dead.scrape_errors) == 1 and "connection refused" in dead.scrape_errors[0]
    assert (jobs["opsconsole"].status, jobs["prometheus"].status) == ("ok", "ok")


def test_health_reports_an_unreachable_alertmanager(source, viewer):
    from tests.support.processes import free_port

    source.alertmanager_url = f"http://127.0.0.1:{free_port()}"
    source.save()
    health = invoke("monitoring.health", viewer, {}).result
    assert health.alertmanager.startswith("down: Alertmanager of source 'default'") and "did not answer" in health.alertmanager
