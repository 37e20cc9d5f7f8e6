"""Instant and range queries, series and labels against the real Prometheus,
through the gateway as a viewer would call them, with values asserted."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.errors import InvalidInput
from apps.core.gateway import invoke
from apps.monitoring.errors import MonitoringError


def test_query_returns_the_exporters_values(source, viewer):
    result = invoke("monitoring.query", viewer, {"query": 'demo_service_up{job="exporter"}'}).result
    assert result.result_type == "vector"
    assert {s.labels["service"]: s.value for s in result.series} == {"api": 1.0, "db": 0.0}
    assert all(s.labels["job"] == "exporter" for s in result.series)
    event = AuditEvent.objects.get(operation="monitoring.query")
    assert (event.outcome, event.actor, event.target) == ("ok", viewer.name, 'default: demo_service_up{job="exporter"}')


def test_query_scalar_and_time(source, viewer):
    at = timezone.now() - timedelta(seconds=30)
    result = invoke("monitoring.query", viewer, {"source": "default", "query": "scalar(vector(42)) * 2", "time": at.isoformat()}).result
    assert result.result_type == "scalar"
    assert result.series[0].value == 84.0
    assert abs((result.series[0].timestamp - at).total_seconds()) < 0.01


def test_bad_promql_is_a_clear_error_audited_as_failed(source, viewer):
    with pytest.raises(MonitoringError) as exc:
        invoke("monitoring.query", viewer, {"query": "sum(rate(demo_requests_total[1m]"})
    assert exc.value.message.startswith("Prometheus rejected the request (bad_data):")
    assert "parse error" in exc.value.message
    event = AuditEvent.objects.get(operation="monitoring.query")
    assert event.outcome == "failed" and "parse error" in event.error


def test_a_range_vector_in_an_instant_query_says_what_to_use(source, viewer):
    with pytest.raises(MonitoringError, match=r"use monitoring\.query_range"):
        invoke("monitoring.query", viewer, {"query": "demo_queue_depth[10s]"})


def test_query_timeout_comes_back_as_a_clear_message(source, viewer):
    source.timeout_seconds = 0.001  # sent to Prometheus as its query timeout: 1ms
    source.save()
    # 11,000 evaluation steps over every series take Prometheus longer than 1 ms.
    heavy = 'count({__name__=~".+"})'
    end = timezone.now()
    params = {"query": heavy, "start": (end - timedelta(hours=1)).isoformat(), "end": end.isoformat(), "step_seconds": 0.33}
    with pytest.raises(MonitoringError) as exc:
        invoke("monitoring.query_range", viewer, params)
    assert "Prometheus stopped the query (timeout)" in exc.value.message
    assert "Narrow the time range" in exc.value.message


def test_query_range_returns_points_every_step(source, viewer):
    end = timezone.now()
    params = {"query": "demo_queue_depth", "start": (end - timedelta(seconds=4)).isoformat(), "end": end.isoformat(), "step_seconds": 1}
    result = invoke("monitoring.query_range", viewer, params).result
    (series,) = result.series
    assert series.labels["job"] == "exporter"
    assert len(series.points) == 5
    assert all(value == 7.0 for _, value in series.points)
    assert [round(b - a) for (a, _), (b, _) in zip(series.points, series.points[1:], strict=False)] == [1, 1, 1, 1]


def test_query_range_points_keep_infinities_and_have_no_value_for_nan(source, viewer):
    end = timezone.now()
    params = {"start": (end - timedelta(seconds=2)).isoformat(), "end": end.isoformat(), "step_seconds": 1}
    for query, expected in (("vector(0) / 0", None), ("vector(1) / 0", float("inf")), ("vector(-1) / 0", float("-inf"))):
        (series,) = invoke("monitoring.query_range", viewer, {**params, "query": query}).result.series
        assert [value for _, value in series.points] == [expected] * 3


def test_query_range_refuses_too_many_points_before_asking(source, viewer):
    end = timezone.now()
    params = {"query": "up", "start": (end - timedelta(hours=4)).isoformat(), "end": end.isoformat(), "step_seconds": 1}
    with pytest.raises(InvalidInput) as exc:
        invoke("monitoring.query_range", viewer, params)
    assert "14,401 points per series is more than Prometheus' limit of 11,000: use a step of at least 2 s" in exc.value.message


def test_query_range_refuses_ranges_beyond_the_maximum(source, viewer, settings):
    settings.MONITORING_MAX_RANGE_DAYS = 7
    end = timezone.now()
    params = {"query": "up", "start": (end - timedelta(days=8)).isoformat(), "end": end.isoformat()}
    with pytest.raises(InvalidInput, match="at most 7 days"):
        invoke("monitoring.query_range", viewer, params)


def test_query_length_is_capped(source, viewer, settings):
    with pytest.raises(InvalidInput, match="at most 4000 characters"):
        invoke("monitoring.query", viewer, {"query": "up + " * 1000})


def test_series_and_labels(source, viewer):
    found = invoke("monitoring.series", viewer, {"match": ['demo_service_up{job="exporter"}']}).result
    assert sorted(s["service"] for s in found.series) == ["api", "db"] and not found.truncated
    limited = invoke("monitoring.series", viewer, {"match": ["demo_temperature_celsius"], "limit": 2}).result
    assert len(limited.series) == 2 and limited.truncated
    names = invoke("monitoring.labels", viewer, {}).result
    assert {"job", "instance", "room", "service"} <= set(names.values)
    services = invoke("monitoring.labels", viewer, {"label": "service", "match": ["demo_service_up"]}).result
    assert services.values == ["api", "db"]
    jobs = invoke("monitoring.labels", viewer, {"label": "job"}).result
    assert {"exporter", "opsconsole", "dead", "prometheus"} <= set(jobs.values)


def test_unknown_source_names_the_known_ones(source, viewer):
    with pytest.raises(MonitoringError, match=r"no Prometheus source named 'nope' \(known: default\)"):
        invoke("monitoring.query", viewer, {"source": "nope", "query": "up"})
