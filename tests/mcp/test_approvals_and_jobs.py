"""Risky tools wait for a human; long tools follow their job on a real worker."""

import asyncio

import anyio
import jsonschema
import pytest
from asgiref.sync import sync_to_async

from apps.approvals.models import ApprovalRequest
from apps.audit.models import AuditEvent
from apps.core.models import Job

from .conftest import mcp_client

pytestmark = pytest.mark.django_db(transaction=True)


def approve_in_web_ui(client, approver, request_id: int) -> None:
    client.force_login(approver)
    shown = ApprovalRequest.objects.get(pk=request_id).plan_hash  # the page's hidden field: votes are on the plan shown
    response = client.post(f"/approvals/{request_id}/vote/", {"decision": "approve", "comment": "fine", "plan_hash": shown}, follow=True)
    assert "recorded" in response.content.decode()


async def wait_for_job(agent, request_id: int) -> dict:
    for _ in range(100):
        status = (await agent.call_tool("approvals_status", {"request_id": request_id})).structured_content
        if status["job_status"] in Job.FINISHED:
            return status
        await asyncio.sleep(0.3)
    raise AssertionError(f"the approved job did not finish: {status}")


async def test_risky_call_is_pending_until_a_human_approves_then_the_agent_sees_the_result(
    mcp_url, make_user, make_token, client, celery_worker
):
    requester = await sync_to_async(make_user)("operator", "approver")  # an approver's token still cannot approve
    token, raw = await sync_to_async(make_token)(requester)
    async with mcp_client(mcp_url, raw) as agent:
        tools = {t.name: t for t in (await agent.list_tools()).tools}
        assert not [name for name in tools if "approve" in name or "vote" in name or "reject" in name]

        pending = await agent.call_tool("core_purge_jobs", {"older_than_days": 30})
        assert not pending.is_error
        jsonschema.validate(pending.structured_content, tools["core_purge_jobs"].output_schema)
        request_id = pending.structured_content["approval_request_id"]
        assert pending.structured_content["status"] == "pending_approval"
        assert pending.structured_content["approval_url"].endswith(f"/approvals/{request_id}/")
        assert "approvals_status" in pending.content[0].text

        status = await agent.call_tool("approvals_status", {"request_id": request_id})
        assert status.structured_content["status"] == "pending" and status.structured_content["job_id"] is None
        mine = await agent.call_tool("approvals_list_mine", {"status": "pending"})
        assert [r["request_id"] for r in mine.structured_content["requests"]] == [request_id]
        assert not await sync_to_async(Job.objects.filter(operation="core.purge_jobs").exists)()

        await sync_to_async(approve_in_web_ui)(client, await sync_to_async(make_user)("approver"), request_id)
        done = await wait_for_job(agent, request_id)

    assert (done["status"], done["job_status"], done["job_result"]) == ("approved", "succeeded", {"deleted": 0}), done
    requested = await sync_to_async(AuditEvent.objects.get)(operation="core.purge_jobs", channel="mcp")
    assert (requested.outcome, requested.actor, requested.token_id, requested.approval_id) == (
        "pending", requester.username, token.pk, str(request_id)
    )  # fmt: skip
    ran = await sync_to_async(AuditEvent.objects.get)(operation="core.purge_jobs", channel="worker")
    assert (ran.outcome, ran.actor, ran.token_id) == ("ok", requester.username, token.pk)


async def test_long_tool_relays_progress_and_returns_the_jobs_result(mcp_url, make_user, make_token, celery_worker):
    _, raw = await sync_to_async(make_token)(await sync_to_async(make_user)("operator"))
    progress = []

    async def on_progress(done, total, message):
        progress.append((done, total, message))

    async with mcp_client(mcp_url, raw) as agent:
        result = await agent.call_tool("core_echo_job", {"steps": 3, "step_seconds": 0.4, "message": "hi"}, progress_callback=on_progress)
    assert not result.is_error, result.content
    assert result.structured_content == {"message": "hi", "steps_done": 3}
    assert progress and progress[-1][:2] == (100, 100)
    assert any(message.startswith("step ") for _, _, message in progress), progress


async def test_a_failing_job_is_a_tool_error(mcp_url, make_user, make_token, celery_worker):
    _, raw = await sync_to_async(make_token)(await sync_to_async(make_user)("operator"))
    async with mcp_client(mcp_url, raw) as agent:
        result = await agent.call_tool("core_echo_job", {"steps": 2, "step_seconds": 0, "fail_at_step": 2})
    assert result.is_error and "Failed at step 2" in result.content[0].text


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_cancelling_the_call_cancels_the_job(mcp_url, make_user, make_token, celery_worker, mode):
    token, raw = await sync_to_async(make_token)(await sync_to_async(make_user)("operator"))
    running = anyio.Event()

    async def on_progress(done, total, message):
        if done > 0:
            running.set()

    async with mcp_client(mcp_url, raw, mode=mode) as agent, anyio.create_task_group() as tg:
        tg.start_soon(lambda: agent.call_tool("core_echo_job", {"steps": 100, "step_seconds": 0.2}, progress_callback=on_progress))
        with anyio.fail_after(20):
            await running.wait()
        tg.cancel_scope.cancel()

    job = await sync_to_async(Job.objects.get)(operation="core.echo_job")
    cancels = AuditEvent.objects.filter(operation="core.cancel_job", target=f"job {job.pk}")
    for _ in range(50):
        if job.status in Job.FINISHED and await cancels.aexists():
            break
        await asyncio.sleep(0.2)
        await sync_to_async(job.refresh_from_db)()
    assert job.cancel_requested and job.status == Job.CANCELLED and job.progress < 100
    cancelled = await cancels.aget()  # the agent's cancel is the operation, audited as the page's is
    assert (cancelled.outcome, cancelled.channel, cancelled.token_id) == ("ok", "mcp", token.pk)


async def test_an_agent_cancels_a_job_with_the_cancel_tool_if_its_role_may(mcp_url, make_user, make_token):
    owner = await sync_to_async(make_user)("operator")
    job = await Job.objects.acreate(operation="core.echo_job", params={"steps": 1}, channel="web", requested_by=owner)
    viewer_token, viewer_raw = await sync_to_async(make_token)(await sync_to_async(make_user)("viewer"))
    token, raw = await sync_to_async(make_token)(await sync_to_async(make_user)("operator"))
    async with mcp_client(mcp_url, viewer_raw) as agent:
        refused = await agent.call_tool("core_cancel_job", {"job_id": str(job.pk)})
    assert refused.is_error and "needs the core.run_write_ops permission" in refused.content[0].text
    assert (await Job.objects.aget(pk=job.pk)).status == Job.QUEUED
    async with mcp_client(mcp_url, raw) as agent:
        tools = {t.name for t in (await agent.list_tools()).tools}
        done = await agent.call_tool("core_cancel_job", {"job_id": str(job.pk)})
        again = await agent.call_tool("core_cancel_job", {"job_id": str(job.pk)})
    assert "core_cancel_job" in tools
    assert not done.is_error and done.structured_content == {"job_id": str(job.pk), "status": "cancelled"}
    assert again.is_error and "already been cancelled: nothing to cancel" in again.content[0].text
    assert (await Job.objects.aget(pk=job.pk)).status == Job.CANCELLED
    events = [e async for e in AuditEvent.objects.filter(operation="core.cancel_job").order_by("seq")]
    assert [(e.outcome, e.channel, e.token_id, e.target) for e in events] == [
        ("denied", "mcp", viewer_token.pk, ""),  # refused before its params are read
        ("ok", "mcp", token.pk, f"job {job.pk}"), ("failed", "mcp", token.pk, f"job {job.pk}"),
    ]  # fmt: skip
