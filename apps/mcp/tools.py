"""Operations as MCP tools: their listing (schemas, annotations) and their results.

The registry is the single source: a tool is an exposed operation the caller's
role (narrowed by the token's scopes) allows; its schemas are the operation's
pydantic models, its annotations follow from its risk.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Literal

import mcp_types as types
from mcp.shared.inbound import x_mcp_header_map
from pydantic import BaseModel, Field, TypeAdapter

from apps.core import operations
from apps.core.errors import InvalidInput, OpsError
from apps.core.operations import Operation, Risk

TEXT_LIMIT = 2000  # characters of the text rendering; structuredContent carries everything


class Deferred(BaseModel):
    """What a call returns when its result is not there yet: an approval is pending,
    or a job is still running after the wait for it ran out."""

    status: Literal["pending_approval", "queued", "running"]
    message: str = Field(description="What happens next and how to follow it.")
    approval_request_id: int | None = Field(None, description="Follow it with the approvals_status tool.")
    approval_url: str | None = Field(None, description="Where a human approver decides.")
    plan: dict | None = Field(None, description="What the call will do, resolved now: what the approvers see and vote on.")
    plan_hash: str | None = Field(None, description="SHA-256 of the plan's canonical JSON; the approved job runs only if it still matches.")
    job_id: str | None = None
    job_url: str | None = None


def defers(op: Operation) -> bool:
    """Whether a call may return `Deferred` instead of the operation's output."""
    return op.risk is Risk.RISKY or op.long


@cache
def tool_of(op: Operation) -> types.Tool:
    """The tool for an operation; built once per process (the registry is static)."""
    input_schema = op.input.model_json_schema()
    input_schema.setdefault("properties", {})
    if defers(op):
        output_schema = TypeAdapter(op.output | Deferred).json_schema()
        output_schema["type"] = "object"
    else:
        output_schema = op.output.model_json_schema()
    return types.Tool(
        name=op.tool_name,
        title=op.title,
        description=op.description,
        input_schema=input_schema,
        output_schema=output_schema,
        annotations=types.ToolAnnotations(
            title=op.title,
            read_only_hint=op.risk is Risk.READ,
            destructive_hint=op.risk is Risk.RISKY,
            idempotent_hint=op.idempotent,
            open_world_hint=False,
        ),
    )


def tools_for(actor) -> list[types.Tool]:
    """Exactly the tools `actor` may call."""
    return [tool_of(op) for op in operations.all_operations() if op.exposed and actor.has_perm(op.permission)]


def operation_of_tool(name: str) -> Operation | None:
    """The exposed operation a tool name stands for. Looked up twice per tools/call (the SDK's
    Mcp-Param check, then the call): a tool name is its operation's with "_" for ".", so the
    registry is asked for "app.rest" directly rather than scanned and sorted."""
    found = operations.find(name.replace("_", ".", 1))
    if found is None or found.tool_name != name:  # an operation named otherwise (e.g. "a.b.c"): scan
        found = next((op for op in operations.all_operations() if op.tool_name == name), None)
    return found if found is not None and found.exposed else None


def input_schema_of(name: str) -> dict | None:
    """For the SDK's Mcp-Param header check on 2026-07-28 calls (else it runs tools/list per call).
    None for a tool whose schema declares no header (`x-mcp-header`; none of ours does): the check
    compares only declared headers with their arguments, so it can reject nothing there, and None
    spares the walk of the whole schema it makes on every call."""
    op = operation_of_tool(name)
    return tool_of(op).input_schema if op and _declares_headers(op) else None


@cache
def _declares_headers(op: Operation) -> bool:
    return bool(x_mcp_header_map(tool_of(op).input_schema))


def _text(prefix: str, data: dict) -> types.TextContent:
    body = json.dumps(data, separators=(",", ":"), default=str)
    if len(body) > TEXT_LIMIT:
        body = body[:TEXT_LIMIT] + " … (truncated; the full result is in structuredContent)"
    return types.TextContent(type="text", text=f"{prefix}\n{body}")


def success(op: Operation, result: BaseModel) -> types.CallToolResult:
    data = result.model_dump(mode="json")
    return types.CallToolResult(content=[_text(f"{op.title}: done.", data)], structured_content=data)


def deferred(op: Operation, state: Deferred) -> types.CallToolResult:
    data = state.model_dump(mode="json")
    return types.CallToolResult(content=[_text(f"{op.title}: {state.message}", data)], structured_content=data)


def error(op: Operation, message: str) -> types.CallToolResult:
    """An error the agent can act on, as a tool result (never a protocol error)."""
    return types.CallToolResult(content=[types.TextContent(type="text", text=f"{op.tool_name}: {message}")], is_error=True)


def failure(op: Operation, exc: OpsError) -> types.CallToolResult:
    if isinstance(exc, InvalidInput):
        return error(op, "invalid arguments — " + "; ".join(f"{field or '(arguments)'}: {msg}" for field, msg in exc.errors.items()))
    return error(op, f"not run — {exc.message}" if exc.outcome == "denied" else exc.message)
