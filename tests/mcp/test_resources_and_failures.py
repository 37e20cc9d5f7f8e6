"""Resources beyond incidents and approvals (a deployment's log, a dashboard
snapshot on a real Prometheus and on one that is down), what a role may not read,
and a synchronous tool call whose peer is unreachable."""

import json

import pytest
from asgiref.sync import sync_to_async
from mcp.shared.exceptions import MCPError

from apps.audit.models import AuditEvent
from apps.core.resilience import forget_breaker
from apps.infrastructure.models import Deployment, DeploymentLogLine, Environment, Revision, Service
from apps.monitoring.models import Dashboard, Panel, PrometheusSource
from tests.monitoring import peers
from tests.support.peers import require_binary
from tests.support.processes import free_port

from .conftest import mcp_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def prometheus():
    """A Prometheus scraping only itself: constant queries such as vector(42) need no data."""
    peer = peers.start_prometheus(require_binary("prometheus"), {})
    peers.wait_for(lambda: peers.instant(peer.url, "vector(1)"), what="Prometheus answering queries")
    yield peer
    peer.shutdown()


@pytest.fixture
def token_of(make_user, make_token):
    async def issue(*roles):
        user = await sync_to_async(make_user)(*roles)
        _, raw = await sync_to_async(make_token)(user)
        return user, raw

    return issue


def last_event(**filters) -> AuditEvent:
    return AuditEvent.objects.filter(**filters).order_by("-seq").first()


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


def make_source(name: str, base_url: str) -> PrometheusSource:
    forget_breaker(f"prometheus:{name}")
    return PrometheusSource.objects.create(name=name, base_url=base_url, timeout_seconds=3)


def make_dashboard(slug: str, source: PrometheusSource) -> Dashboard:
    board = Dashboard.objects.create(slug=slug, title=f"Board {slug}", source=source, default_range="5m")
    Panel.objects.create(dashboard=board, position=0, title="Answer", query="vector(42)", chart="stat")
    Panel.objects.create(dashboard=board, position=1, title="Ones", query="vector(1)", chart="line")
    return board


def make_deployment(user) -> Deployment:
    environment = Environment.objects.create(name="mcp-res", engine_url="unix:///nonexistent.sock")
    service = Service.objects.create(environment=environment, name="web", spec={"image": "web:v7"})
    revision = Revision.objects.create(service=service, number=7, spec={"image": "web:v7"}, created_by=user)
    deployment = Deployment.objects.create(service=service, revision=revision, strategy="rolling", status="succeeded",
                                           step_label="done", requested_by=user)  # fmt: skip
    for text in ("pulling web:v7", "replica 1/2 healthy", "replica 2/2 healthy"):
        DeploymentLogLine.objects.create(deployment=deployment, text=text)
    return deployment


async def read_json(client, uri: str) -> dict:
    contents = (await client.read_resource(uri)).contents
    assert contents[0].mime_type == "application/json"
    return json.loads(contents[0].text)


async def test_a_sync_tool_whose_peer_is_unreachable_is_a_tool_error_and_audited_failed(mcp_url, token_of):
    user, raw = await token_of("viewer")
    await sync_to_async(make_source)("mcp-unreachable", closed_port_url())
    async with mcp_client(mcp_url, raw) as client:
        result = await client.call_tool("monitoring_query", {"source": "mcp-unreachable", "query": "up"})

    assert result.is_error and result.structured_content is None
    text = result.content[0].text
    assert text.startswith("monitoring_query: Prometheus of source 'mcp-unreachable'") and "did not answer" in text, text
    event = await sync_to_async(last_event)(operation="monitoring.query")
    assert (event.channel, event.outcome, event.actor) == ("mcp", "failed", user.username)
    assert "did not answer" in event.error and "mcp-unreachable" in event.error


async def test_dashboard_snapshot_resource_on_a_real_prometheus(mcp_url, token_of, prometheus):
    _, raw = await token_of("viewer")
    source = await sync_to_async(make_source)("mcp-prom", prometheus.url)
    await sync_to_async(make_dashboard)("mcp-live", source)
    async with mcp_client(mcp_url, raw) as client:
        snapshot = await read_json(client, "opsconsole://dashboards/mcp-live")

    assert (snapshot["dashboard"], snapshot["source"], snapshot["range"]) == ("mcp-live", "mcp-prom", "5m")
    assert (snapshot["source_status"], snapshot["problem"]) == ("up", "")
    answer, ones = snapshot["panels"]
    assert (answer["title"], answer["error"], [v["value"] for v in answer["values"]]) == ("Answer", "", [42.0])
    assert ones["error"] == "" and ones["series"] and {value for _, value in ones["series"][0]["points"]} == {1.0}
    event = await sync_to_async(last_event)(operation="monitoring.dashboard")
    assert (event.channel, event.outcome, event.target) == ("mcp", "ok", "mcp-live (default range)")


async def test_dashboard_snapshot_resource_when_the_source_is_down(mcp_url, token_of):
    _, raw = await token_of("viewer")
    source = await sync_to_async(make_source)("mcp-down", closed_port_url())
    await sync_to_async(make_dashboard)("mcp-dark", source)
    async with mcp_client(mcp_url, raw) as client:
        snapshot = await read_json(client, "opsconsole://dashboards/mcp-dark")
        with pytest.raises(MCPError, match="There is no dashboard 'nope'"):
            await client.read_resource("opsconsole://dashboards/nope")

    assert snapshot["source_status"] == "down" and "'mcp-down'" in snapshot["problem"] and "did not answer" in snapshot["problem"]
    assert [p["error"] for p in snapshot["panels"]] == ["Not queried: the source is down."] * 2


async def test_deployment_resource_carries_its_log(mcp_url, token_of):
    user, raw = await token_of("viewer")
    deployment = await sync_to_async(make_deployment)(user)
    async with mcp_client(mcp_url, raw) as client:
        data = await read_json(client, f"opsconsole://deployments/{deployment.pk}")
        with pytest.raises(MCPError, match="Expected a number"):
            await client.read_resource("opsconsole://deployments/latest")

    assert (data["deployment"], data["environment"], data["service"]) == (deployment.pk, "mcp-res", "web")
    assert (data["status"], data["revision"], data["image"], data["requested_by"]) == ("succeeded", 7, "web:v7", user.username)
    assert [line.split(" ", 1)[1] for line in data["log"]] == ["pulling web:v7", "replica 1/2 healthy", "replica 2/2 healthy"]


async def test_resources_a_role_may_not_read(mcp_url, token_of, make_user):
    owner = await sync_to_async(make_user)("viewer")
    deployment = await sync_to_async(make_deployment)(owner)
    _, auditor = await token_of("auditor")
    async with mcp_client(mcp_url, auditor) as client:
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        with pytest.raises(MCPError, match=r"may not run infrastructure\.deployment"):
            await client.read_resource(f"opsconsole://deployments/{deployment.pk}")
    assert "opsconsole://deployments/{deployment}" not in templates
    event = await sync_to_async(last_event)(operation="infrastructure.deployment")
    assert (event.channel, event.outcome) == ("mcp", "denied")

    # A viewer may read deployments, but not someone else's approval request.
    _, operator = await token_of("operator")
    async with mcp_client(mcp_url, operator) as client:
        pending = await client.call_tool("core_purge_jobs", {"older_than_days": 9})
    request_id = pending.structured_content["approval_request_id"]
    _, viewer = await token_of("viewer")
    async with mcp_client(mcp_url, viewer) as client:
        with pytest.raises(MCPError, match=f"No approval request #{request_id} of yours"):
            await client.read_resource(f"opsconsole://approvals/{request_id}")
