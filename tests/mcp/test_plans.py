"""Agents see what they asked for: the pending result carries the plan and its hash,
approvals_status returns them; break-glass through a token only where the scope allows it."""

import jsonschema
import pytest
from asgiref.sync import sync_to_async

from apps.approvals import plans
from apps.approvals.models import ApprovalPolicy, ApprovalRequest
from apps.audit.models import AuditEvent

from .conftest import mcp_client

pytestmark = pytest.mark.django_db(transaction=True)


async def test_the_pending_result_carries_the_plan_and_its_hash(mcp_url, make_user, make_token):
    _, raw = await sync_to_async(make_token)(await sync_to_async(make_user)("operator"))
    async with mcp_client(mcp_url, raw) as agent:
        tools = {t.name: t for t in (await agent.list_tools()).tools}
        pending = await agent.call_tool("core_purge_jobs", {"older_than_days": 30}, meta={"opsconsole/reason": "tidy up"})
        jsonschema.validate(pending.structured_content, tools["core_purge_jobs"].output_schema)
        content = pending.structured_content
        assert content["status"] == "pending_approval"
        assert content["plan"] == {
            "summary": "Delete the finished jobs (and their logs) older than 30 days.",
            "older_than_days": 30,
            "jobs": 0,
        }
        assert content["plan_hash"] == plans.plan_hash(content["plan"])
        status = (await agent.call_tool("approvals_status", {"request_id": content["approval_request_id"]})).structured_content
        assert (status["plan"], status["plan_hash"]) == (content["plan"], content["plan_hash"])
    approval = await sync_to_async(ApprovalRequest.objects.get)(pk=content["approval_request_id"])
    assert (approval.plan_hash, approval.reason) == (content["plan_hash"], "tidy up")


async def test_break_glass_through_a_token_only_where_the_scope_allows_it(mcp_url, make_user, make_token):
    _, raw = await sync_to_async(make_token)(await sync_to_async(make_user)("admin"))
    glass = {"opsconsole/reason": "the job table filled the disk", "opsconsole/break_glass": True}
    async with mcp_client(mcp_url, raw) as agent:
        refused = await agent.call_tool("core_purge_jobs", {"older_than_days": 30}, meta=glass)
        assert refused.is_error and "not allowed for an API token" in refused.content[0].text
        assert not await sync_to_async(ApprovalRequest.objects.exists)()

        await sync_to_async(ApprovalPolicy.objects.create)(operation="core.purge_jobs", break_glass_tokens=True)
        ran = await agent.call_tool("core_purge_jobs", {"older_than_days": 30}, meta=glass)
        assert not ran.is_error and ran.structured_content == {"deleted": 0}
    review = await sync_to_async(ApprovalRequest.objects.get)()
    assert (review.status, review.break_glass, review.channel) == ("review", True, "mcp")
    loud = await sync_to_async(AuditEvent.objects.get)(operation="approvals.break_glass")
    assert loud.channel == "mcp" and loud.params["reason"] == "the job table filled the disk"
