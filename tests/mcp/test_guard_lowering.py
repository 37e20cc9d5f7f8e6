"""An agent with an admin-scoped token may ask to lower a guard, never get it on its
own: unprotecting an environment and weakening an approval policy go pending, take
effect only after another person approves in the web UI and the job ran on a real
worker; raising protection is immediate."""

import pytest
from asgiref.sync import sync_to_async

from apps.approvals.models import ApprovalPolicy
from apps.audit.models import AuditEvent
from apps.core.gateway import invoke
from apps.infrastructure.models import Environment

from .conftest import mcp_client
from .test_approvals_and_jobs import approve_in_web_ui, wait_for_job

pytestmark = pytest.mark.django_db(transaction=True)
ENGINE = "unix:///run/none.sock"


async def test_an_admin_token_requests_unprotecting_and_a_weaker_policy_someone_else_approves(
    mcp_url, make_user, make_token, actor_of, client, celery_worker
):
    admin = await sync_to_async(make_user)("admin", "approver")
    token, raw = await sync_to_async(make_token)(admin, ["admin"])
    protect = {"name": "prod", "engine_url": ENGINE, "protected": True}
    await sync_to_async(lambda: invoke("infrastructure.save_environment", actor_of(admin), protect))()
    policy = await sync_to_async(ApprovalPolicy.objects.create)(operation="core.purge_jobs", quorum=2)

    async with mcp_client(mcp_url, raw) as agent:
        tools = {t.name for t in (await agent.list_tools()).tools}
        assert {"infrastructure_save_environment", "approvals_save_policy"} <= tools
        assert not [name for name in tools if "vote" in name or "approve" in name]

        stricter = await agent.call_tool("infrastructure_save_environment", {"name": "prod", "engine_url": ENGINE, "protected": True,
                                                                             "quorum": 2})  # fmt: skip
        assert not stricter.is_error and stricter.structured_content["quorum"] == 2  # raising: at once

        unprotect = await agent.call_tool("infrastructure_save_environment", {"name": "prod", "engine_url": ENGINE, "protected": False})
        weaker = await agent.call_tool("approvals_save_policy", {"id": policy.pk, "operation": "core.purge_jobs", "quorum": 1})
        for pending in (unprotect, weaker):
            assert not pending.is_error, pending.content
            assert pending.structured_content["status"] == "pending_approval"
        assert (await sync_to_async(Environment.objects.get)(name="prod")).protected
        assert (await sync_to_async(ApprovalPolicy.objects.get)(pk=policy.pk)).quorum == 2

        for pending in (unprotect, weaker):
            request_id = pending.structured_content["approval_request_id"]
            await sync_to_async(approve_in_web_ui)(client, await sync_to_async(make_user)("approver"), request_id)
            done = await wait_for_job(agent, request_id)
            assert (done["status"], done["job_status"]) == ("approved", "succeeded"), done

    assert not (await sync_to_async(Environment.objects.get)(name="prod")).protected
    assert (await sync_to_async(ApprovalPolicy.objects.get)(pk=policy.pk)).quorum == 1
    ran = await sync_to_async(list)(AuditEvent.objects.filter(channel="worker", token_id=token.pk).values_list("operation", "outcome"))
    assert sorted(ran) == [("approvals.save_policy", "ok"), ("infrastructure.save_environment", "ok")]
