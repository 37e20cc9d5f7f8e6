"""A DNS answer that changes between the check and the connection never
reaches a link-local address, for every connector that takes a URL.

The outbound guard takes its resolver as a dependency; here an in-process stub
answers for made-up names (`*.rebind.test`, `rebind-s3`: the machine's resolver does
not know them, so reaching a peer at all proves the connection went through the guard).
A Python audit hook records every socket.connect of the process: the proof that
no connection to 169.254.x.x was even attempted."""

from __future__ import annotations

import sys

import pytest

from apps.comms.models import Connector, Delivery, Target
from apps.core.gateway import invoke
from apps.core.outbound import OutboundRefused, system_resolver, use_resolver
from apps.monitoring.models import PrometheusSource
from tests.support import peers
from tests.support.processes import Process, free_port, port_open

LINK_LOCAL = "169.254.169.254"
_connects: list[tuple] = []


def _audit(event: str, args: tuple) -> None:
    if event == "socket.connect" and isinstance(args[1], tuple):
        _connects.append(args[1])


sys.addaudithook(_audit)  # hooks cannot be removed: it only appends to a list


class Resolver:
    """Answers for one name from a script: each lookup takes the next answer, the last one repeats."""

    def __init__(self, name: str, *answers: str):
        self.name, self.answers, self.lookups = name, list(answers), 0

    def __call__(self, host: str, port: int) -> list[str]:
        if host != self.name:
            return system_resolver(host, port)
        self.lookups += 1
        return [self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]]


@pytest.fixture
def connects():
    _connects.clear()
    yield _connects
    assert not [a for a in _connects if a[0].startswith("169.254.")], "a connection to a link-local address was attempted"


def test_monitoring_checks_at_save_and_refuses_the_new_answer_at_connect(db, make_user, actor_of, receiver, connects):
    viewer = actor_of(make_user("viewer"))
    url = f"http://prom.rebind.test:{receiver.port}"
    with use_resolver(Resolver("prom.rebind.test", "127.0.0.1")):
        source = PrometheusSource(name="default", base_url=url)
        source.full_clean()  # the source form's check: loopback, allow-listed for monitoring
        source.save()
        with pytest.raises(Exception, match="Prometheus has no such API endpoint"):
            invoke("monitoring.query", viewer, {"query": "up"})  # reached the local peer (a 404 JSON answer)
    assert receiver.calls("/api/v1/query")
    receiver.reset()
    refused = pytest.raises(OutboundRefused, match=r"169\.254\.169\.254, a link-local or cloud metadata address")
    with use_resolver(Resolver("prom.rebind.test", LINK_LOCAL)), refused:
        invoke("monitoring.query", viewer, {"query": "up"})
    assert receiver.requests == []


def test_comms_connects_to_the_one_answer_it_checked(db, loopback_allowed, receiver, make_user, actor_of, run_job, connects):
    from tests.comms.peers import WEBHOOK_SECRET

    hook = Connector.objects.create(
        name="hook", kind="webhook", url=f"http://hook.rebind.test:{receiver.port}/hooks/ops", secret=WEBHOOK_SECRET
    )
    Target.objects.create(name="hook", connector=hook)
    operator = actor_of(make_user("operator"))
    resolver = Resolver("hook.rebind.test", "127.0.0.1", LINK_LOCAL)
    with use_resolver(resolver):
        first = run_job(invoke("comms.send_notification", operator, {"title": "one", "channels": ["hook"]}))
        # One lookup for the connection, and the socket went to that answer: nothing resolved the name again.
        assert first.result["deliveries"][0]["status"] == "sent" and resolver.lookups == 1
        assert ("127.0.0.1", receiver.port) in connects and len(receiver.accepted) == 1
        second = run_job(invoke("comms.send_notification", operator, {"title": "two", "channels": ["hook"]}))
    (delivery,) = second.result["deliveries"]
    assert delivery["status"] == "failed" and "link-local or cloud metadata" in delivery["error"]
    assert Delivery.objects.get(pk=delivery["id"]).next_attempt_at is None  # refused for good, not retried
    assert len(receiver.accepted) == 1


@pytest.fixture(scope="module")
def moto():
    binary = peers.require_binary("moto_server")
    port = free_port()
    proc = Process("moto", [binary, "-H", "127.0.0.1", "-p", str(port)])
    proc.wait_until(lambda: port_open(port), what="listening")
    yield port
    proc.stop()


def test_storage_endpoints_are_pinned_through_botocore(db, moto, make_user, actor_of, connects):
    admin = actor_of(make_user("admin"))
    save = {"name": "rebind", "endpoint_url": f"http://rebind-s3:{moto}", "addressing_style": "path", "credentials": "stored",
            "access_key_id": "testing", "secret_access_key": "testing"}  # fmt: skip
    with use_resolver(Resolver("rebind-s3", "127.0.0.1")):
        invoke("storage.connection_save", admin, save)  # a dotless name: moto then reads buckets from the path
        assert invoke("storage.buckets", admin, {"connection": "rebind"}).status == "ok"  # moto reached by the pinned name
    assert ("127.0.0.1", moto) in connects
    with use_resolver(Resolver("rebind-s3", "127.0.0.1", LINK_LOCAL)):
        invoke("storage.connection_save", admin, save)  # checked (loopback); the edit also means a fresh client
        with pytest.raises(Exception, match="link-local or cloud metadata"):
            invoke("storage.buckets", admin, {"connection": "rebind"})


def test_docker_tcp_engines_are_pinned_through_requests(db, make_user, actor_of, connects):
    binary = peers.require_binary("podman")
    port = free_port()
    engine = Process("podman-tcp", [binary, "system", "service", "--time=0", f"tcp://127.0.0.1:{port}"])
    try:
        engine.wait_until(lambda: port_open(port), timeout=30, what="listening")
        admin = actor_of(make_user("admin"))
        with use_resolver(Resolver("engine.rebind.test", "127.0.0.1")):
            invoke("infrastructure.save_environment", admin, {"name": "rebind", "engine_url": f"tcp://engine.rebind.test:{port}"})
            (env,) = invoke("infrastructure.environments", admin, {"check": True}).result.environments
        assert env.reachable, env.error
        assert ("127.0.0.1", port) in connects
        with use_resolver(Resolver("engine.rebind.test", "127.0.0.1", LINK_LOCAL)):
            invoke("infrastructure.save_environment", admin, {"name": "rebind", "engine_url": f"tcp://engine.rebind.test:{port}"})
            (env,) = invoke("infrastructure.environments", admin, {"check": True}).result.environments
        assert not env.reachable and "link-local or cloud metadata" in env.error
    finally:
        engine.stop()
