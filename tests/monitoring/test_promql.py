"""The selector helper: label values with quotes, backslashes and newlines are
escaped so that the real Prometheus finds exactly the series that carries them."""

import pytest

from apps.core.gateway import invoke
from apps.monitoring.promql import parse_duration, quote, selector
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
