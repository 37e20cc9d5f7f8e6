"""tools/list: exactly what the token's user (narrowed by its scopes) may call."""

import pytest
from asgiref.sync import sync_to_async

from .conftest import mcp_client

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
