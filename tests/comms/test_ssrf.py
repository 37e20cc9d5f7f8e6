"""The comms policy of the outbound guard: targets resolving to loopback, private
or link-local addresses are refused (before any connection) unless an admin
allow-listed the network. The guard's own rules: tests/core/test_outbound.py."""

import pytest

from apps.comms.client import outbound_guard
from apps.comms.models import AllowedNetwork, Connector, Delivery, Target
from apps.core.gateway import invoke
from apps.core.outbound import OutboundRefused


def test_an_admin_allow_list_entry_lets_a_network_through(db, settings):
    with pytest.raises(OutboundRefused):
        outbound_guard().check("http://10.1.2.3/hook")
    AllowedNetwork.objects.create(cidr="10.1.2.0/24")
    assert outbound_guard().check("http://10.1.2.3/hook").address == "10.1.2.3"
    with pytest.raises(OutboundRefused):
        outbound_guard().check("http://10.1.3.1/hook")
    settings.COMMS_SSRF_ALLOW = ["10.1.3.0/24"]
    assert outbound_guard().check("http://10.1.3.1/hook").address == "10.1.3.1"
    AllowedNetwork.objects.create(cidr="169.254.0.0/16")
    with pytest.raises(OutboundRefused, match="link-local or cloud metadata"):
        outbound_guard().check("http://169.254.169.254/latest/meta-data/")


def test_a_webhook_to_loopback_is_refused_without_the_allow_list(make_user, actor_of, receiver, run_job):
    hook = Connector.objects.create(name="local", kind="webhook", url=receiver.url + "/hooks/ops", secret="s")
    Target.objects.create(name="local-hook", connector=hook)
    job = run_job(invoke("comms.send_notification", actor_of(make_user("operator")), {"title": "x", "channels": ["local-hook"]}))
    (delivery,) = job.result["deliveries"]
    assert delivery["status"] == "failed" and "resolves to 127.0.0.1, a loopback, private or otherwise internal" in delivery["error"]
    assert receiver.requests == []  # refused before connecting
    assert Delivery.objects.get(pk=delivery["id"]).next_attempt_at is None
