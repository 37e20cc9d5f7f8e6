"""Gateway overhead: a read operation that touches nothing (accounts.whoami) called through invoke() from a view,
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

from apps.core.web import call


def bare(request):
    # Every console view is login_required: the session and the user are loaded either way.
    assert request.user.is_authenticated
    return JsonResponse({})


def through_gateway(request):
    call(request, "accounts.whoami", {})
    return JsonResponse({})


urlpatterns = [path("bare", bare), path("gateway", through_gateway)]
ROUNDS, PER_ROUND = 5, 400


def main():
    import time

    from tests.support.roundtrips import counting

    with scratch_database(), override_settings(ROOT_URLCONF=__name__, OPS_RATE_LIMITS={"read": "1000000/m"}):
        user = get_user_model().objects.create_user("bench")
        user.groups.add(Group.objects.get(name="viewer"))
        client = Client()
        client.force_login(user)
        sides = {"bare": lambda: client.get("/bare"), "gateway": lambda: client.get("/gateway")}
        samples, cpu = {k: [] for k in sides}, dict.fromkeys(sides, 0.0)
        for _ in range(ROUNDS):  # alternate the sides so a change of machine load falls on both
            for name, fn in sides.items():
                started = time.process_time()
                samples[name] += timed(fn, PER_ROUND)
                cpu[name] += time.process_time() - started
        trips = {}
        for name, fn in sides.items():
            with counting() as counted:
                fn()
            trips[name] = counted
        from django.db import connection

        print(f"database: {connection.vendor}")
        stats = {name: percentiles(ms) for name, ms in samples.items()}
        for name, label in (("bare", "bare view        "), ("gateway", "view + invoke()  ")):
            per_call = cpu[name] / (ROUNDS * (PER_ROUND + 20)) * 1000
            t = trips[name]
            print(f"{label} {fmt(stats[name])}  cpu/call {per_call:.3f} ms  round trips: sql {t.sql} redis {t.redis}")
        extra_sql, extra_redis = trips["gateway"].sql - trips["bare"].sql, trips["gateway"].redis - trips["bare"].redis
        print(
            f"gateway overhead  p50 {stats['gateway']['p50'] - stats['bare']['p50']:.3f} ms  "
            f"p99 {stats['gateway']['p99'] - stats['bare']['p99']:.3f} ms  round trips +{extra_sql} sql +{extra_redis} redis"
        )


if __name__ == "__main__":
    main()
