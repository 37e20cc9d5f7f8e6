"""Comms fixtures: the loopback peers (once per session), and per test the
connectors and targets pointing at them, with 127.0.0.1 explicitly allow-listed
(the SSRF guard refuses it otherwise)."""

from __future__ import annotations

import pytest

from apps.comms import tasks
from apps.comms.models import AllowedNetwork, Connector, Delivery, Target
from apps.core import gateway
from apps.core.models import Job
from tests.support.processes import free_port

from . import peers as p


@pytest.fixture(scope="session")
def peer_servers():
    servers = {"slack": p.SlackFake(), "twilio": p.TwilioFake(), "receiver": p.Receiver(), "smtp": p.SmtpServer(free_port())}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def slack(peer_servers):
    peer_servers["slack"].reset()
    return peer_servers["slack"]


@pytest.fixture
def twilio(peer_servers):
    peer_servers["twilio"].reset()
    return peer_servers["twilio"]


@pytest.fixture
def receiver(peer_servers):
    peer_servers["receiver"].reset()
    return peer_servers["receiver"]


@pytest.fixture
def smtp(peer_servers):
    peer_servers["smtp"].reset()
    return peer_servers["smtp"]


@pytest.fixture
def loopback_allowed(db):
    return AllowedNetwork.objects.create(cidr="127.0.0.1/32", note="the tests' local peers")


@pytest.fixture
def connectors(db, loopback_allowed, slack, twilio, receiver, smtp):
    """One connector of each kind, and a target for each, all on loopback peers."""
    made = {
        "slack": Connector.objects.create(name="slack", kind="slack", url=slack.url + "/api/", secret=p.SLACK_TOKEN),
        "teams": Connector.objects.create(name="teams", kind="teams", secret=f"{receiver.url}/teams/{p.TEAMS_KEY}"),
        "email": Connector.objects.create(
            name="smtp", kind="email", secret=p.SMTP_PASSWORD,
            options={"host": "127.0.0.1", "port": smtp.port, "username": p.SMTP_USER, "from": "console@example.test"},
        ),
        "sms": Connector.objects.create(
            name="twilio", kind="sms", url=twilio.url, secret=p.TWILIO_TOKEN, options={"account_sid": p.TWILIO_SID, "from": "+15550000001"}
        ),
        "webhook": Connector.objects.create(name="hook", kind="webhook", url=receiver.url + "/hooks/ops", secret=p.WEBHOOK_SECRET),
    }  # fmt: skip
    Target.objects.create(name="ops-slack", connector=made["slack"], recipient="#ops")
    Target.objects.create(name="deploys-slack", connector=made["slack"], recipient="#deploys")
    Target.objects.create(name="ops-teams", connector=made["teams"])
    Target.objects.create(name="oncall-email", connector=made["email"], recipient="oncall@example.test")
    Target.objects.create(name="oncall-sms", connector=made["sms"], recipient="+15550001234")
    Target.objects.create(name="ops-hook", connector=made["webhook"])
    return made


@pytest.fixture
def run_job():
    """Run a queued job here, exactly as the worker does (gateway.run_job)."""

    def run(outcome) -> Job:
        assert outcome.status == "queued", outcome
        gateway.run_job(str(outcome.job.pk))
        return Job.objects.get(pk=outcome.job.pk)

    return run


@pytest.fixture
def send_queued():
    """Send every queued delivery through the worker's task, here and now."""

    def send() -> list[Delivery]:
        for pk in Delivery.objects.filter(status=Delivery.QUEUED).order_by("created_at").values_list("pk", flat=True):
            tasks.deliver(str(pk))
        return list(Delivery.objects.order_by("created_at"))

    return send
