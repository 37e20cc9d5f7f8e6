"""tools/list: exactly what the token's user (narrowed by its scopes) may call."""

import json

import pytest
from asgiref.sync import sync_to_async
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from .conftest import mcp_client, post_raw

pytestmark = pytest.mark.django_db(transaction=True)


async def tools_of(url, token, mode="auto"):
    async with mcp_client(url, token, mode=mode) as client:
        return {tool.name: tool for tool in (await client.list_tools()).tools}


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_viewer_and_operator_see_different_tools(mcp_url, make_user, make_token, mode):
    _, viewer = await sync_to_async(make_token)(await sync_to_async(make_user)("viewer"))
    _, operator = await sync_to_async(make_token)(await sync_to_async(make_user)("operator"))
    as_viewer, as_operator = await tools_of(mcp_url, viewer, mode), await tools_of(mcp_url, operator, mode)

    assert "core_health" in as_viewer and "approvals_status" in as_viewer
    assert not {"core_echo_job", "core_purge_jobs"} & set(as_viewer)
    assert {"core_health", "core_echo_job", "core_purge_jobs"} <= set(as_operator)
    assert set(as_viewer) < set(as_operator)
    assert not any("approve" in name and name != "approvals_status" for name in as_operator)


@pytest.mark.parametrize("version", HANDSHAKE_PROTOCOL_VERSIONS)
def test_initialize_negotiates_every_handshake_revision_the_sdk_speaks(mcp_url, make_user, make_token, version):
    _, raw = make_token(make_user("viewer"))
    body = {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
    }  # fmt: skip
    response = post_raw(mcp_url, body, Authorization=f"Bearer {raw}")
    assert response.status_code == 200, response.text
    data = next(line.removeprefix("data: ") for line in response.text.splitlines() if line.startswith("data: {"))
    result = json.loads(data)["result"]
    assert result["protocolVersion"] == version and result["serverInfo"]["name"] == "opsconsole"
    assert "tools" in result["capabilities"] and "resources" in result["capabilities"]
