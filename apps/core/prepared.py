"""A queryset's SQL built once and run again with new values.

Django builds a queryset's SQL anew each time it is evaluated. For a read an agent polls
(approvals.list_mine: "is my request decided yet?") that is most of the call's database work
in Python: ~0.25 of its ~0.44 ms here, against ~0.07 ms to send the SQL and read the rows.
`PreparedQuery(build, values=...)` builds and compiles the query once per shape, finds where each
named value lands among the SQL's parameters (by building it again with that value changed), and
from then on runs that SQL with the values it is given (a RawQuerySet, keeping the queryset's
prefetch_related). What cannot be a parameter (a slice's LIMIT, whether a filter is there at
all: `build` gets None for an absent value) is part of the shape.

A value must reach the parameters as it was given: a lookup that rewrites it (icontains wraps
it in %…%), a value used twice or written into the SQL text is refused when the shape is
compiled, as is select_related (a raw query cannot follow it). Values are trusted to fit their
column (ids the console holds, input its models validated): Django answers an integer too large
for its column with an empty result, this runs it and the database refuses it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db.models import QuerySet
from django.db.models.query import RawQuerySet


class PreparedQuery:
    def __init__(self, build: Callable[..., QuerySet], values: tuple[str, ...]):
        self._build = build
        self._values = values
        self._shapes: dict[tuple, tuple] = {}
        self._lock = threading.Lock()

    def __call__(self, **kwargs) -> RawQuerySet:
        """The query for these arguments: `values` (int or str, or None for absent) become
        parameters; any other argument is part of the shape."""
        shape = tuple((name, type(value) if name in self._values else value) for name, value in sorted(kwargs.items()))
        compiled = self._shapes.get(shape)
        if compiled is None:
            with self._lock:
                compiled = self._shapes.setdefault(shape, self._compile(kwargs))
        model, db, sql, params, slots, prefetch = compiled
        params = list(params)
        for name, slot in slots:
            params[slot] = kwargs[name]
        return RawQuerySet(sql, model=model, params=params, using=db).prefetch_related(*prefetch)

    def _compile(self, kwargs: dict) -> tuple:
        queryset = self._build(**kwargs)
        if queryset.query.select_related:
            raise ValueError("a prepared query cannot follow select_related: prefetch instead")
        sql, params = _sql(queryset)
        slots = []
        for name in self._values:
            if kwargs.get(name) is None:
                continue
            # Built again with only this value changed: where the parameters differ is where it goes.
            other = _other(kwargs[name])
            other_sql, other_params = _sql(self._build(**{**kwargs, name: other}))
            moved = [i for i, (a, b) in enumerate(zip(params, other_params, strict=False)) if a != b]
            if (
                other_sql != sql
                or len(other_params) != len(params)
                or len(moved) != 1
                or (params[moved[0]], other_params[moved[0]]) != (kwargs[name], other)
            ):
                raise ValueError(f"the value {name!r} must reach the query's parameters once, unchanged")
            slots.append((name, moved[0]))
        return queryset.model, queryset.db, sql, tuple(params), tuple(slots), tuple(queryset._prefetch_related_lookups)


def _sql(queryset) -> tuple[str, list]:
    sql, params = queryset.query.get_compiler(queryset.db).as_sql()
    return sql, list(params)


def _other(value):
    """Another value of the same type, in the same range (a lookup refuses an integer its column cannot hold)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"a prepared query's values are int or str, not {type(value).__name__}")
    return value ^ 1 if isinstance(value, int) else value + "~"
