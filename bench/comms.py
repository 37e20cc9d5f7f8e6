"""Comms figures on this machine (printed, never asserted): routing through 50
rules, alerts through the gateway (new and suppressed repeats), and signed
webhook deliveries to a local receiver.

    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/comms.py

Creates and drops its own test database.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")
os.environ.setdefault("OPSCONSOLE_ENV", "test")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402


def timed(label, n, fn):
    started = time.perf_counter()
    for i in range(n):
        fn(i)
    elapsed = time.perf_counter() - started
    print(f"{label:<48} {n:>5} in {elapsed:6.2f} s  = {n / elapsed:8.1f}/s  ({1000 * elapsed / n:.2f} ms each)")


def main():
    from apps.accounts.actors import Actor
    from apps.comms import dispatch, routing
    from apps.comms.models import AllowedNetwork, Connector, Delivery, RoutingRule, Target
    from apps.comms.render import Message
    from apps.core.gateway import invoke
    from tests.comms.peers import WEBHOOK_SECRET, Receiver

    receiver = Receiver()
    AllowedNetwork.objects.create(cidr="127.0.0.1/32")
    hook = Connector.objects.create(name="hook", kind="webhook", url=receiver.url + "/hooks/ops", secret=WEBHOOK_SECRET)
    Target.objects.create(name="hook", connector=hook)
    for n in range(49):
        RoutingRule.objects.create(name=f"rule {n}", position=n, services=[f"svc-{n}"], targets=["hook"])
    RoutingRule.objects.create(name="default", is_default=True, targets=["hook"])
    system = Actor.system()

    timed("route() through 50 rules (default reached)", 500, lambda i: routing.route({"service": "other", "severity": "warning"}))
    timed(
        "comms.send_alert, new alerts (gateway + audit)", 200,
        lambda i: invoke("comms.send_alert", system, {"type": "Bench", "severity": "warning", "title": f"a{i}", "labels": {"n": str(i)}}),
    )  # fmt: skip
    timed(
        "comms.send_alert, suppressed repeats", 200,
        lambda i: invoke("comms.send_alert", system, {"type": "Bench", "severity": "warning", "title": "a0", "labels": {"n": "0"}}),
    )  # fmt: skip
    Delivery.objects.all().delete()
    rows = dispatch.create([routing.Destination(hook, "", "hook")] * 200, Message(title="bench"), origin="bench")
    timed("signed webhook deliveries to a loopback receiver", len(rows), lambda i: dispatch.deliver(rows[i].pk))
    sent = Delivery.objects.filter(status="sent").count()
    print(f"{'deliveries sent / verified by the receiver':<48} {sent} / {len(receiver.accepted)}")
    receiver.stop()


if __name__ == "__main__":
    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        main()
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
