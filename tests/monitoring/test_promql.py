"""The selector helper: label values with quotes, backslashes and newlines are
escaped so that the real Prometheus finds exactly the series that carries them."""

import pytest

from apps.core.errors import InvalidInput
from apps.core.gateway import invoke
from apps.monitoring.promql import check_ranges, parse_duration, quote, selector
from tests.monitoring.exporter import TRICKY_ROOMS


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ('lab "A"', r'"lab \"A\""'),
        ("c:\\temp", r'"c:\\temp"'),
        ("two\nlines", r'"two\nlines"'),
        ("tab\tand\rcr\x01", r'"tab\tand\rcr\x01"'),
        ('"}) or vector(1) #', r'"\"}) or vector(1) #"'),
        ("ünïcode", '"ünïcode"'),
    ],
)
def test_quote_escapes_like_a_promql_string(value, literal):
    assert quote(value) == literal


def test_selector_checks_names_and_escapes_values():
    assert selector("up", job='api "v2"') == r'up{job="api \"v2\""}'
    assert selector(matchers={"room": "x"}) == '{room="x"}'
    assert selector("up") == "up"
    with pytest.raises(ValueError, match="not a valid label name"):
        selector("up", matchers={'job="x"} or up{a': "1"})
    with pytest.raises(ValueError, match="not a valid metric name"):
        selector("up or vector(1)")
    with pytest.raises(ValueError):
        selector()


@pytest.mark.parametrize("room", list(TRICKY_ROOMS))
def test_each_tricky_label_value_finds_exactly_its_series(room, source, viewer):
    query = selector("demo_temperature_celsius", room=room)
    result = invoke("monitoring.query", viewer, {"query": query}).result
    assert [(s.labels["room"], s.value) for s in result.series] == [(room, TRICKY_ROOMS[room])]


def test_an_injection_attempt_stays_a_label_value(source, viewer):
    query = selector("demo_temperature_celsius", room='plain"} or demo_service_up{service="api')
    assert invoke("monitoring.query", viewer, {"query": query}).result.series == []


def test_parse_duration():
    assert parse_duration("15m").total_seconds() == 900
    assert parse_duration("7d").total_seconds() == 7 * 86400
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("1h30m")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("max_over_time(up[365d:1s])", "looks back 365 days"),
        ("max_over_time(up[1d:1s])", "more than 11,000 steps"),
        ("rate(up[40d])", "looks back 40 days"),
        ("sum(rate(up[5m]))[32d:1h]", "looks back 32 days"),
        ("max_over_time(up[1d:0s])", "more than 11,000 steps"),
        ("up[1x]", "not a duration"),
    ],
)
def test_range_selectors_and_subqueries_keep_the_range_bounds(db, viewer, query, message):
    """The same bounds as a range query (MONITORING_MAX_RANGE_DAYS, Prometheus' 11,000 points) — checked before any call."""
    with pytest.raises(InvalidInput) as caught:
        invoke("monitoring.query", viewer, {"query": query})
    assert message in caught.value.errors["query"]


def test_bounded_ranges_and_brackets_in_strings_pass():
    bounds = {"max_seconds": 31 * 86400, "max_points": 11_000}
    for query in ("max_over_time(up[1d:1m])", "rate(up[1h30m])", 'up{job="[365d:1s]"}', "up[31d]"):
        assert check_ranges(query, **bounds) == query
