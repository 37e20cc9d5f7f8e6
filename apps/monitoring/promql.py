"""Building PromQL from values people type or click, never by formatting user
input into a query string: label values are escaped as PromQL string literals
and label and metric names are checked against the grammar."""

from __future__ import annotations

import re
from datetime import timedelta

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
OPERATORS = ("=", "!=", "=~", "!~")
DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w|y)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def quote(value: str) -> str:
    """A PromQL double-quoted string literal holding exactly `value`.

    PromQL strings follow Go's escaping: backslash and the quote are escaped, and
    control characters are written as escapes so a newline cannot end the literal.
    """
    out = ['"']
    for char in value:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def matcher(name: str, value: str, op: str = "=") -> str:
    if not LABEL_NAME.match(name):
        raise ValueError(f"{name!r} is not a valid label name (letters, digits and _; not starting with a digit).")
    if op not in OPERATORS:
        raise ValueError(f"{op!r} is not a label matcher operator ({', '.join(OPERATORS)}).")
    return f"{name}{op}{quote(value)}"


def selector(metric: str = "", matchers: dict[str, str] | None = None, **labels: str) -> str:
    """`selector("up", job='api "v2"')` -> `up{job="api \\"v2\\""}`.

    Every value is an exact-match label value; pass `matchers` for names that are
    not Python identifiers. At least a metric name or one matcher is required.
    """
    if metric and not METRIC_NAME.match(metric):
        raise ValueError(f"{metric!r} is not a valid metric name.")
    pairs = {**(matchers or {}), **labels}
    if not metric and not pairs:
        raise ValueError("A selector needs a metric name or at least one label matcher.")
    inner = ",".join(matcher(name, str(value)) for name, value in pairs.items())
    return f"{metric}{{{inner}}}" if inner or not metric else metric


def parse_duration(text: str) -> timedelta:
    """'5m' -> 5 minutes; the subset of Prometheus durations with one unit."""
    match = DURATION.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 1h, 7d.")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


# Strings are skipped when looking for selectors: a label value may contain "[365d]".
_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_BRACKETS = re.compile(r"\[\s*([^\]:]*?)\s*(?::\s*([^\]]*?)\s*)?\]")
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")


def duration_seconds(text: str) -> float:
    """A Prometheus duration, one unit or several ('1h30m'), in seconds."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 1h30m, 7d.")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


def check_ranges(query: str, *, max_seconds: float, max_points: int) -> str:
    """Refuse range selectors (`x[5m]`) and subqueries (`f(x)[1d:1m]`) reaching further back than
    `max_seconds`, or a subquery asking for more than `max_points` steps; return the query unchanged.
    The same bounds as a range query's, so a subquery cannot get around them."""
    for match in _BRACKETS.finditer(_STRINGS.sub('""', query)):
        window, step = match[1], match[2]
        if not window:
            continue  # not a range: Prometheus reports its own syntax error
        seconds = duration_seconds(window)
        if seconds > max_seconds:
            raise ValueError(f"[{window}] looks back {seconds / 86400:g} days; the console allows at most {max_seconds / 86400:g} days.")
        if step and seconds / max(duration_seconds(step), 0.001) > max_points:
            raise ValueError(f"[{window}:{step}] asks for more than {max_points:,} steps: use a coarser step.")
    return query


def format_seconds(seconds: float) -> str:
    """Seconds as a Prometheus duration string ('90s' -> '90s', 0.5 -> '500ms')."""
    if seconds < 1:
        return f"{max(1, round(seconds * 1000))}ms"
    return f"{seconds:g}s"
