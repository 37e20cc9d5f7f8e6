"""Gateway overhead: a no-op read operation called through invoke() from a view,
against a bare authenticated Django view, both through the full middleware stack.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/opsconsole REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/gateway.py
"""

from harness import fmt, percentiles, scratch_database, timed  # isort: skip

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.http import JsonResponse
from django.test import Client, override_settings
from django.urls import path
from pydantic import BaseModel

from apps.core.operations import operation
from apps.core.web import call


class Nothing(BaseModel):
    pass


@operation("bench.noop", risk="read")
def noop(ctx, params: Nothing) -> Nothing:
    """Do nothing (benchmark)."""
    return Nothing()


def bare(request):
    # Every console view is login_required: the session and the user are loaded either way.
    assert request.user.is_authenticated
    return JsonResponse({})


def through_gateway(request):
    call(request, "bench.noop", {})
    return JsonResponse({})


urlpatterns = [path("bare", bare), path("gateway", through_gateway)]
REPEAT = 2000


def main():
    with scratch_database(), override_settings(ROOT_URLCONF=__name__, OPS_RATE_LIMITS={"read": "1000000/m"}):
        user = get_user_model().objects.create_user("bench")
        user.groups.add(Group.objects.get(name="viewer"))
        client = Client()
        client.force_login(user)
        bare_ms = percentiles(timed(lambda: client.get("/bare"), REPEAT))
        gw_ms = percentiles(timed(lambda: client.get("/gateway"), REPEAT))
        from django.db import connection

        print(f"database: {connection.vendor}")
        print(f"bare view         {fmt(bare_ms)}")
        print(f"view + invoke()   {fmt(gw_ms)}")
        print(
            f"gateway overhead  p50 {gw_ms['p50'] - bare_ms['p50']:.3f} ms  p99 {gw_ms['p99'] - bare_ms['p99']:.3f} ms  (goal: <= 2 ms p50)"
        )


if __name__ == "__main__":
    main()
