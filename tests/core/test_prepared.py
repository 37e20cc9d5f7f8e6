"""A prepared query gives what its queryset gives, for any values, without building its SQL again."""

from unittest import mock

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.db.models.sql.compiler import SQLCompiler
from django.test.utils import CaptureQueriesContext

from apps.core.prepared import PreparedQuery

pytestmark = pytest.mark.django_db


def _users(group: int, name: str | None, limit: int):
    users = User.objects.filter(groups__id=group).order_by("-id").prefetch_related("groups")
    return (users.filter(last_name=name) if name is not None else users)[:limit]


@pytest.fixture
def teams():
    red, blue = Group.objects.create(name="red"), Group.objects.create(name="blue")
    for n in range(6):
        user = User.objects.create(username=f"{'ab'[n % 2]}{n}", last_name="ab"[n % 2])
        user.groups.add(red if n < 4 else blue)
    return red, blue


def _rows(users) -> list:
    return [(u.pk, u.username, sorted(g.name for g in u.groups.all())) for u in users]


def test_it_gives_what_the_queryset_gives_for_every_value_and_shape(teams):
    prepared = PreparedQuery(_users, values=("group", "name"))
    for group in teams:
        for name in (None, "a", "b", "nobody"):
            for limit in (1, 3, 10):
                assert _rows(prepared(group=group.pk, name=name, limit=limit)) == _rows(_users(group.pk, name, limit))
    assert _rows(prepared(group=teams[0].pk, name="a", limit=10))  # not trivially empty


def test_a_shape_is_compiled_once_and_prefetches_stay_one_query_each(teams):
    prepared = PreparedQuery(_users, values=("group", "name"))
    list(prepared(group=teams[0].pk, name=None, limit=10))
    compiling = mock.patch.object(SQLCompiler, "as_sql", autospec=True, side_effect=SQLCompiler.as_sql)
    with compiling as compiles, CaptureQueriesContext(connection) as queries:
        users = _rows(prepared(group=teams[1].pk, name=None, limit=10))
    assert [u[1] for u in users] == ["b5", "a4"]
    assert len(queries) == 2  # the users, then their groups: no query per user
    assert [c.args[0].query.model for c in compiles.call_args_list] == [Group]  # only the prefetch is built


def test_a_value_that_does_not_reach_the_parameters_unchanged_is_refused():
    def rewritten(name):
        return User.objects.filter(username__icontains=name)

    def twice(name):
        return User.objects.filter(username=name) | User.objects.filter(first_name=name)

    for build in (rewritten, twice):
        with pytest.raises(ValueError, match="must reach the query's parameters once"):
            PreparedQuery(build, values=("name",))(name="x")


def test_select_related_and_other_value_types_are_refused():
    with pytest.raises(ValueError, match="select_related"):
        PreparedQuery(lambda pk: Permission.objects.filter(pk=pk).select_related("content_type"), values=("pk",))(pk=1)
    with pytest.raises(TypeError, match="int or str"):
        PreparedQuery(lambda on: User.objects.filter(is_active=on), values=("on",))(on=True)
