"""A real deploy on the engine announces itself through comms: the routing rule
for type=deployment gets "started" and "succeeded" at a real webhook receiver
that checks the console's signature."""

import pytest

from apps.comms.models import AllowedNetwork, Connector, RoutingRule, Target
from apps.core.gateway import run_job
from apps.core.models import Job
from tests.comms import peers as comms_peers

from .conftest import deploy, web_service


@pytest.fixture
def receiver():
    server = comms_peers.Receiver()
    yield server
    server.stop()


def broadcasts() -> list[Job]:
    return list(Job.objects.filter(operation="comms.broadcast_deployment").order_by("created_at"))


def test_a_deploy_is_broadcast_to_the_deployment_route(operator, admin, environment, images, receiver, django_capture_on_commit_callbacks):
    AllowedNetwork.objects.create(cidr="127.0.0.1/32")
    hook = Connector.objects.create(name="hook", kind="webhook", url=receiver.url + "/hooks/ops", secret=comms_peers.WEBHOOK_SECRET)
    Target.objects.create(name="deploys-hook", connector=hook)
    RoutingRule.objects.create(name="deployments", labels={"type": "deployment"}, targets=["deploys-hook"])
    web_service(admin, environment, images, replicas=1)
    with django_capture_on_commit_callbacks(execute=True):
        deployment = deploy(operator, environment)
    assert deployment.status == "succeeded"
    jobs = broadcasts()
    assert jobs[0].params["status"] == "started" and jobs[-1].params["status"] == "succeeded"
    assert all(j.channel == "system" and j.params["deployment_id"] == str(deployment.pk) for j in jobs)
    for job in jobs:
        run_job(str(job.pk))
    assert [Job.objects.get(pk=j.pk).status for j in jobs] == ["succeeded"] * len(jobs)
    events = [a["webhook"]["event"] for a in receiver.accepted]
    assert events[0] == "deployment.started" and events[-1] == "deployment.succeeded"  # webhooks hear start and result only
    assert receiver.accepted[-1]["webhook"]["data"]["service"] == "web"


def test_no_rule_no_broadcast(operator, admin, environment, images, django_capture_on_commit_callbacks):
    web_service(admin, environment, images, replicas=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert deploy(operator, environment).status == "succeeded"
    assert broadcasts() == []
