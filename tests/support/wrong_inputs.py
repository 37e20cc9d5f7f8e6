"""Hypothesis strategies for inputs that pass an operation's JSON Schema but
mean nothing: names nobody registered, empty strings, the longest string
allowed, boundary and extreme numbers, dates at the ends of the calendar.

Covers the JSON Schema that pydantic emits for the console's input models
($ref/$defs, anyOf, enum, const, the five scalar types, arrays, objects with
properties or additionalProperties; formats date-time, uuid, password)."""

from __future__ import annotations

from datetime import UTC

from hypothesis import strategies as st

WORDS = ["", "no-such-thing", "default", "0", "-rf", "../../etc/passwd", "a b", "ünï"]


def strategy(schema: dict, defs: dict | None = None) -> st.SearchStrategy:
    defs = schema.get("$defs", {}) if defs is None else defs
    if "$ref" in schema:
        return st.deferred(lambda: strategy(defs[schema["$ref"].rsplit("/", 1)[-1]], defs))
    if "anyOf" in schema:
        return st.one_of([strategy(option, defs) for option in schema["anyOf"]])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind in ("integer", "number"):
        return _number(schema, integer=kind == "integer")
    if kind == "string":
        return _string(schema)
    if kind == "array":
        items = strategy(schema.get("items", {"type": "string"}), defs)
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=min(schema.get("maxItems", 3), 3))
    if kind == "object" or "properties" in schema:
        return _object(schema, defs)
    return st.sampled_from(WORDS)  # an unconstrained value


def _number(schema: dict, *, integer: bool) -> st.SearchStrategy:
    low = schema.get("minimum", schema.get("exclusiveMinimum", -(10**12)))
    high = schema.get("maximum", schema.get("exclusiveMaximum", 10**12))
    candidates = [low, high, low + 1, high - 1, 0, 1, -1, 10**9, (low + high) / 2]
    if integer:
        candidates = [int(c) for c in candidates]
    valid = sorted(
        {c for c in candidates if low <= c <= high and c != schema.get("exclusiveMinimum") and c != schema.get("exclusiveMaximum")}
    )
    return st.sampled_from(valid or [low])


def _string(schema: dict) -> st.SearchStrategy:
    low, high = schema.get("minLength", 0), schema.get("maxLength", 500)
    fmt = schema.get("format")
    if fmt == "date-time":
        return st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())
    if fmt == "uuid":
        return st.uuids().map(str)
    words = st.sampled_from([*WORDS, "x" * min(high, 5000)])
    base = st.from_regex(schema["pattern"], fullmatch=True) if "pattern" in schema else words
    return base.filter(lambda s: low <= len(s) <= high)


def _object(schema: dict, defs: dict) -> st.SearchStrategy:
    properties = schema.get("properties", {})
    if not properties:
        extra = schema.get("additionalProperties")
        values = strategy(extra, defs) if isinstance(extra, dict) else st.sampled_from(WORDS)
        return st.dictionaries(st.sampled_from(["x", "PATH", "opsconsole.x", "a b", ""]), values, max_size=2)
    required = set(schema.get("required", []))
    return st.fixed_dictionaries(
        {k: strategy(v, defs) for k, v in properties.items() if k in required},
        optional={k: strategy(v, defs) for k, v in properties.items() if k not in required},
    )
