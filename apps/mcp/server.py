"""The MCP server: tools/list and tools/call over the operation registry.

Every call goes through `invoke(..., channel="mcp")`, the same gateway as the
web UI: role, per-token rate limit, validation, approval, audit.
"""

from __future__ import annotations

import logging
import time

import anyio
import mcp_types as types
from django.conf import settings
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from apps.core.errors import OpsError
from apps.core.models import Job

from . import resources, tools
from .context import actor_of, call, in_thread
from .tools import Deferred

log = logging.getLogger(__name__)
POLL_SECONDS = 0.25
REASON_META, BREAK_GLASS_META = "opsconsole/reason", "opsconsole/break_glass"


def _absolute(path: str) -> str:
    return settings.CONSOLE_BASE_URL.rstrip("/") + path


async def list_tools(ctx, params) -> types.ListToolsResult:
    return types.ListToolsResult(tools=tools.tools_for(actor_of(ctx)))


async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
    op = tools.operation_of_tool(params.name)
    if op is None:
        raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")
    meta = params.meta or {}
    # Request `_meta` (outside the tool's own arguments): a reason for approvers, and break-glass where the scope allows tokens.
    reason, break_glass = str(meta.get(REASON_META, ""))[:2000], meta.get(BREAK_GLASS_META) is True
    try:
        outcome = await call(ctx, op.name, params.arguments or {}, reason=reason, break_glass=break_glass)
    except OpsError as exc:
        return tools.failure(op, exc)
    if outcome.status == "pending":
        return tools.deferred(op, _pending(outcome.approval))
    if outcome.status == "queued":
        return await _follow(ctx, op, outcome.job)
    return tools.success(op, outcome.result)


async def _cancel(ctx, job: Job) -> None:
    """The agent cancelled its call: cancel the job as it would with the core_cancel_job tool (role-checked,
    audited). A refusal (its role may not cancel, the job ended meanwhile) is audited; the call ends either way."""
    try:
        await call(ctx, "core.cancel_job", {"job_id": str(job.pk)})
    except OpsError as exc:
        log.info("cancelled MCP call left job %s as it was: %s", job.pk, exc.message)


def _pending(approval) -> Deferred:
    url = _absolute(approval.get_absolute_url())
    return Deferred(
        status="pending_approval",
        approval_request_id=approval.pk,
        approval_url=url,
        plan=approval.plan,
        plan_hash=approval.plan_hash,
        message=(
            f"waiting for approval: request #{approval.pk} needs {approval.quorum} human approver(s), who decide at {url}. "
            f'Follow it with approvals_status {{"request_id": {approval.pk}}}; once approved the job runs and its result '
            "appears there. No tool can approve it. Approvers vote on `plan`; if what would run changes before the job "
            "starts, the request ends `drifted` and nothing runs."
        ),
    )


async def _follow(ctx, op, job: Job) -> types.CallToolResult:
    """Wait for a queued job, relaying its progress; a cancelled call cancels the job."""
    deadline = time.monotonic() + settings.MCP_JOB_WAIT_SECONDS
    reported = None
    try:
        while True:
            job = await in_thread(Job.objects.get)(pk=job.pk)
            if (job.progress, job.message) != reported:
                reported = (job.progress, job.message)
                await ctx.session.report_progress(job.progress, 100, job.message or job.status)
            if job.status in Job.FINISHED or time.monotonic() > deadline:
                break
            await anyio.sleep(POLL_SECONDS)
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            await _cancel(ctx, job)
        raise
    if job.status == Job.SUCCEEDED:
        return tools.success(op, op.output.model_validate(job.result))
    if job.status in Job.FINISHED:
        return tools.error(op, job.error or f"the job was {job.status}")
    url = _absolute(job.get_absolute_url())
    waited = f"still {job.status} after {settings.MCP_JOB_WAIT_SECONDS} s ({job.progress}%)"
    state = Deferred(status=job.status, job_id=str(job.pk), job_url=url, message=f"{waited}; it goes on, see {url}.")
    return tools.deferred(op, state)


server = Server(
    "opsconsole",
    version="1",
    title="Ops console",
    instructions=(
        "The console's operations as tools: monitoring, security, infrastructure, storage, comms. "
        "Risky tools return a pending approval that only a human can approve; follow it with approvals_status."
    ),
    get_tool_input_schema=tools.input_schema_of,
    on_list_tools=list_tools,
    on_call_tool=call_tool,
    on_list_resources=resources.list_resources,
    on_list_resource_templates=resources.list_resource_templates,
    on_read_resource=resources.read_resource,
)
