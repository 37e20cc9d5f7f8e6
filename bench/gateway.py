"""Gateway overhead: a no-op read operation called through invoke() from a view,
against a bare authenticated Django view, both through the full middleware stack.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/opsconsole REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/gateway.py [--stream]

--stream measures again with SIEM streaming on: a syslog sink on a local TCP receiver,
drained continuously by a thread of this process (standing in for a worker, so it also
competes for this process's CPU: an upper bound), and prints the ratio on/off.
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


def measure(client) -> tuple[dict, dict]:
    return percentiles(timed(lambda: client.get("/bare"), REPEAT)), percentiles(timed(lambda: client.get("/gateway"), REPEAT))


def report(label: str, bare_ms: dict, gw_ms: dict) -> None:
    print(f"{label}bare view         {fmt(bare_ms)}")
    print(f"{label}view + invoke()   {fmt(gw_ms)}")
    overhead = f"p50 {gw_ms['p50'] - bare_ms['p50']:.3f} ms  p99 {gw_ms['p99'] - bare_ms['p99']:.3f} ms"
    print(f"{label}gateway overhead  {overhead}  (goal: <= 2 ms p50)")


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


def streaming_on(admin) -> tuple[int, threading.Event, threading.Thread]:
    """(the sink's first cursor, the event that stops the drainer, the drainer)."""
    from apps.audit.stream import drain_all
    from apps.core.gateway import invoke

    address = f"127.0.0.1:{discard_receiver()}"
    start = invoke("audit.save_sink", admin, {"name": "bench", "kind": "syslog", "address": address, "tls": False}).result.cursor
    stop = threading.Event()

    def drainer():
        from django.db import connection

        while not stop.is_set():
            drain_all()
            time.sleep(0.1)
        connection.close()

    thread = threading.Thread(target=drainer, daemon=True)
    thread.start()
    return start, stop, thread


def main():
    stream = "--stream" in sys.argv
    limits = {"read": "1000000/m", "write": "1000000/m", "risky": "1000000/m"}
    with scratch_database(), override_settings(ROOT_URLCONF=__name__, OPS_RATE_LIMITS=limits, COMMS_SSRF_ALLOW=["127.0.0.0/8"]):
        user = get_user_model().objects.create_user("bench")
        user.groups.add(Group.objects.get(name="viewer"))
        client = Client()
        client.force_login(user)
        from django.db import connection

        print(f"database: {connection.vendor}")
        bare_ms, gw_ms = measure(client)
        report("", bare_ms, gw_ms)
        if not stream:
            return
        from apps.accounts.actors import Actor
        from apps.audit.models import AuditSink

        admin = get_user_model().objects.create_user("bench-admin")
        admin.groups.add(Group.objects.get(name="admin"))
        start, stop, drainer = streaming_on(Actor.for_user(admin))
        on_bare, on_gw = measure(client)
        stop.set()
        drainer.join()
        report("streaming on: ", on_bare, on_gw)
        sink = AuditSink.objects.get(name="bench")
        print(f"streamed {sink.cursor - start} events while measuring, {sink.failures} failures")
        print(f"ratio on/off: view + invoke() p50 {on_gw['p50'] / gw_ms['p50']:.2f}x  p99 {on_gw['p99'] / gw_ms['p99']:.2f}x")


if __name__ == "__main__":
    main()
