"""Gateway overhead: a read operation that touches nothing (accounts.whoami) called through invoke() from a view,
against a bare authenticated Django view, both through the full middleware stack.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/opsconsole REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/gateway.py [--stream]

--stream adds a third side, the same gateway call with SIEM streaming on: a syslog sink on
a local TCP receiver, enabled only during that side's rounds and drained continuously by a
thread of this process (standing in for a worker, so it also competes for this process's
CPU: an upper bound), and prints the ratio streaming on / off.
"""

from harness import fmt, percentiles, scratch_database, timed  # isort: skip

import socket
import sys
import threading
import time

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


def discard_receiver() -> int:
    """A TCP syslog receiver that reads everything and closes when the sender does."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            conn, _ = server.accept()
            with conn:
                while conn.recv(65536):
                    pass

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1]


class Streaming:
    """A sink that is on only while its side runs, and a thread draining like a worker would."""

    def __init__(self):
        from apps.accounts.actors import Actor
        from apps.core.gateway import invoke

        admin = get_user_model().objects.create_user("bench-admin")
        admin.groups.add(Group.objects.get(name="admin"))
        params = {"name": "bench", "kind": "syslog", "address": f"127.0.0.1:{discard_receiver()}", "tls": False, "enabled": False}
        invoke("audit.save_sink", Actor.for_user(admin), params)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.drain, daemon=True)
        self.thread.start()

    def drain(self):
        from django.db import connection

        from apps.audit.stream import drain_all

        while not self.stop.is_set():
            drain_all()
            time.sleep(0.05)
        connection.close()

    def switch(self, on: bool) -> None:
        from apps.audit.models import AuditSink
        from apps.audit.stream import forget_sinks

        AuditSink.objects.filter(name="bench").update(enabled=on)  # bench arrangement, not a console change
        forget_sinks()

    def close(self) -> str:
        from apps.audit.models import AuditSink

        self.stop.set()
        self.thread.join()
        sink = AuditSink.objects.get(name="bench")
        return f"streamed {sink.cursor} events (cursor), {sink.failures} failures"


def main():
    from tests.support.roundtrips import counting

    stream = "--stream" in sys.argv
    limits = {"read": "1000000/m", "write": "1000000/m", "risky": "1000000/m"}
    with scratch_database(), override_settings(ROOT_URLCONF=__name__, OPS_RATE_LIMITS=limits, AUDIT_SINK_OUTBOUND_ALLOW=["127.0.0.0/8"]):
        user = get_user_model().objects.create_user("bench")
        user.groups.add(Group.objects.get(name="viewer"))
        client = Client()
        client.force_login(user)
        sides = {"bare": lambda: client.get("/bare"), "gateway": lambda: client.get("/gateway")}
        streaming = Streaming() if stream else None
        names = ["bare", "gateway"] + (["streaming"] if streaming else [])
        samples, cpu = {k: [] for k in names}, dict.fromkeys(names, 0.0)
        for _ in range(ROUNDS):  # alternate the sides so a change of machine load falls on all
            for name in names:
                if name == "streaming":
                    streaming.switch(True)
                started = time.process_time()  # all threads: the drainer's CPU counts against streaming
                samples[name] += timed(sides.get(name, sides["gateway"]), PER_ROUND)
                cpu[name] += time.process_time() - started
                if name == "streaming":
                    streaming.switch(False)
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
        print(
            f"view + invoke() / bare view  p50 {stats['gateway']['p50'] / stats['bare']['p50']:.2f}x  "
            f"cpu/call {cpu['gateway'] / cpu['bare']:.2f}x"
        )
        if streaming:
            on, off = stats["streaming"], stats["gateway"]
            per_call = cpu["streaming"] / (ROUNDS * (PER_ROUND + 20)) * 1000
            print(f"view + invoke(), streaming on  {fmt(on)}  cpu/call {per_call:.3f} ms (with the drainer)")
            print(f"streaming on / off  p50 {on['p50'] / off['p50']:.2f}x  p99 {on['p99'] / off['p99']:.2f}x  ({streaming.close()})")


if __name__ == "__main__":
    main()
