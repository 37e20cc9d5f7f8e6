"""tools/call through the gateway: structured results, errors an agent can act on,
and one audit event per call naming the user, the token and the channel."""

import json

import jsonschema
import pytest
from asgiref.sync import sync_to_async
from mcp.shared.exceptions import MCPError

from apps.audit.models import AuditEvent
from apps.comms.models import Incident, TimelineEntry
from apps.core import operations
from apps.mcp.tools import operation_of_tool

from .conftest import mcp_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def token_of(make_user, make_token):
    async def issue(*roles, **fields):
        user = await sync_to_async(make_user)(*roles)
        token, raw = await sync_to_async(make_token)(user, **fields)
        return user, token, raw

    return issue


def last_event(**filters) -> AuditEvent:
    return AuditEvent.objects.filter(**filters).order_by("-seq").first()


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_read_tool_returns_structured_content_matching_its_output_schema(mcp_url, token_of, mode):
    user, token, raw = await token_of("viewer")
    async with mcp_client(mcp_url, raw, mode=mode) as client:
        tool = next(t for t in (await client.list_tools()).tools if t.name == "core_health")
        result = await client.call_tool("core_health", {"include_workers": False})

    assert not result.is_error
    jsonschema.validate(result.structured_content, tool.output_schema)
    assert result.structured_content["database"] == "ok"
    assert "core.health" in tool.description or tool.description.startswith("Health")
    assert tool.title and tool.annotations.read_only_hint is True and tool.annotations.idempotent_hint is True
    assert tool.input_schema["properties"]["include_workers"]["type"] == "boolean"
    assert result.content[0].type == "text" and "done" in result.content[0].text

    event = await sync_to_async(last_event)(operation="core.health")
    assert (event.channel, event.outcome, event.actor, event.actor_id) == ("mcp", "ok", user.username, user.pk)
    assert event.token_id == token.pk and token.lookup in event.token


async def test_annotations_follow_risk(mcp_url, token_of):
    _, _, raw = await token_of("operator")
    async with mcp_client(mcp_url, raw) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    purge, echo = tools["core_purge_jobs"].annotations, tools["core_echo_job"].annotations
    assert purge.destructive_hint is True and purge.read_only_hint is False
    assert echo.destructive_hint is False and echo.read_only_hint is False
    health, query = tools["core_health"].annotations, tools["monitoring_query"].annotations
    assert health.read_only_hint is True and health.destructive_hint is False
    assert query.read_only_hint is True and query.idempotent_hint is True
    # idempotentHint is the operation's own flag: a silence created twice is two silences.
    assert operations.get("monitoring.silence_create").idempotent is False
    assert tools["monitoring_silence_create"].annotations.idempotent_hint is False
    assert tools["monitoring_silence_create"].annotations.read_only_hint is False
    for name, tool in tools.items():
        assert tool.annotations.idempotent_hint is operation_of_tool(name).idempotent, name
    # A call that may wait for approval (or a job) declares that shape too.
    assert "Deferred" in tools["core_purge_jobs"].output_schema["$defs"]


async def test_invalid_arguments_are_a_tool_error_naming_the_field(mcp_url, token_of):
    _, _, raw = await token_of("operator")
    async with mcp_client(mcp_url, raw) as client:
        result = await client.call_tool("core_purge_jobs", {"older_than_days": 0})
    assert result.is_error and result.structured_content is None
    assert "older_than_days" in result.content[0].text and "greater than or equal to 1" in result.content[0].text
    event = await sync_to_async(last_event)(operation="core.purge_jobs")
    assert (event.channel, event.outcome) == ("mcp", "failed") and "older_than_days" in event.error


async def test_a_tool_the_role_may_not_call_is_denied_and_audited(mcp_url, token_of):
    _, _, raw = await token_of("viewer")
    async with mcp_client(mcp_url, raw) as client:
        result = await client.call_tool("core_purge_jobs", {"older_than_days": 30})
    assert result.is_error and "may not run core.purge_jobs" in result.content[0].text
    event = await sync_to_async(last_event)(operation="core.purge_jobs")
    assert (event.channel, event.outcome) == ("mcp", "denied")


async def test_token_scopes_narrow_the_users_roles(mcp_url, token_of):
    _, _, raw = await token_of("operator", "viewer", scopes=["viewer"])
    async with mcp_client(mcp_url, raw) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("core_echo_job", {"steps": 1})
    assert "core_echo_job" not in names and "core_health" in names
    assert result.is_error and "viewer" in result.content[0].text


async def test_an_unknown_tool_is_a_protocol_error(mcp_url, token_of):
    _, _, raw = await token_of("operator")
    async with mcp_client(mcp_url, raw) as client:
        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool("no_such_tool", {})


def open_incident() -> Incident:
    incident = Incident.objects.create(title="checkout is down", group_key="checkout", severity="critical")
    TimelineEntry.objects.create(incident=incident, kind="comment", text="rolling back", actor="alice")
    return incident


async def test_resources_are_read_through_the_gateway(mcp_url, token_of):
    _, token, raw = await token_of("operator")
    incident = await sync_to_async(open_incident)()
    async with mcp_client(mcp_url, raw) as client:
        timeline = json.loads((await client.read_resource(f"opsconsole://incidents/{incident.pk}")).contents[0].text)
        pending = await client.call_tool("core_purge_jobs", {"older_than_days": 9})
        request_id = pending.structured_content["approval_request_id"]
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        read = await client.read_resource(f"opsconsole://approvals/{request_id}")
        with pytest.raises(MCPError, match="Resource not found"):
            await client.read_resource("opsconsole://nothing/1")
        with pytest.raises(MCPError, match="No approval request #999999"):
            await client.read_resource("opsconsole://approvals/999999")

    assert {
        "opsconsole://approvals/{request_id}",
        "opsconsole://deployments/{deployment}",
        "opsconsole://incidents/{incident_id}",
    } <= templates
    assert (timeline["title"], timeline["status"]) == ("checkout is down", "open")
    assert [(e["kind"], e["text"], e["actor"]) for e in timeline["timeline"]] == [("comment", "rolling back", "alice")]
    assert read.contents[0].mime_type == "application/json" and f'"request_id": {request_id}' in read.contents[0].text
    event = await sync_to_async(last_event)(operation="approvals.status", target=f"request {request_id}")
    assert (event.channel, event.outcome, event.token_id) == ("mcp", "ok", token.pk)
