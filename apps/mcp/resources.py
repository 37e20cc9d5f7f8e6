"""Resources: things an agent reads by URI, each served by a read operation
through the gateway (so roles, rate limits and audit apply as for tools)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import mcp_types as types
from mcp.shared.exceptions import MCPError

from apps.core import operations
from apps.core.errors import OpsError

from .context import actor_of, call

RESOURCE_NOT_FOUND = -32002  # the spec's code for an unknown resource URI


@dataclass(frozen=True)
class ResourceKind:
    uri_template: str  # RFC 6570, one variable
    name: str
    description: str
    operation: str
    params: Callable[[str], dict]

    def match(self, uri: str) -> str | None:
        prefix, _, rest = self.uri_template.partition("{")
        found = re.fullmatch(re.escape(prefix) + r"([-\w.]+)" + re.escape(rest.partition("}")[2]), uri)
        return found.group(1) if found else None

    def template(self) -> types.ResourceTemplate:
        return types.ResourceTemplate(
            uri_template=self.uri_template, name=self.name, description=self.description, mime_type="application/json"
        )


def _number(value: str) -> int:
    if not value.isdigit():
        raise MCPError(types.INVALID_PARAMS, f"Expected a number in the URI, got {value!r}.")
    return int(value)


KINDS = [
    ResourceKind(
        "opsconsole://deployments/{deployment}", "deployment",
        "A deployment: status, steps, who requested and approved it, and its log.",
        "infrastructure.deployment", lambda v: {"deployment": _number(v)},
    ),
    ResourceKind(
        "opsconsole://incidents/{incident_id}", "incident",
        "An incident and its timeline: alerts, pages, acknowledgements, comments.",
        "comms.incident", lambda v: {"incident_id": _number(v)},
    ),
    ResourceKind(
        "opsconsole://dashboards/{dashboard}", "dashboard",
        "A snapshot of a monitoring dashboard: every panel's current data over its default range.",
        "monitoring.dashboard", lambda v: {"dashboard": v},
    ),
    ResourceKind(
        "opsconsole://approvals/{request_id}", "approval",
        "One of your approval requests: status, votes and, once approved, its job's result.",
        "approvals.status", lambda v: {"request_id": _number(v)},
    ),
]  # fmt: skip


def _readable(actor) -> list[ResourceKind]:
    return [kind for kind in KINDS if actor.has_perm(operations.get(kind.operation).permission)]


async def list_resources(ctx, params) -> types.ListResourcesResult:
    return types.ListResourcesResult(resources=[])  # every resource is addressed through a template


async def list_resource_templates(ctx, params) -> types.ListResourceTemplatesResult:
    return types.ListResourceTemplatesResult(resource_templates=[kind.template() for kind in _readable(actor_of(ctx))])


async def read_resource(ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
    uri = str(params.uri)
    for kind in KINDS:
        value = kind.match(uri)
        if value is not None:
            break
    else:
        raise MCPError(RESOURCE_NOT_FOUND, f"Resource not found: {uri}")
    try:
        outcome = await call(ctx, kind.operation, kind.params(value))
    except OpsError as exc:
        raise MCPError(RESOURCE_NOT_FOUND if exc.status_code == 404 else types.INVALID_PARAMS, exc.message) from None
    text = json.dumps(outcome.result.model_dump(mode="json"), indent=1)
    return types.ReadResourceResult(contents=[types.TextResourceContents(uri=uri, mime_type="application/json", text=text)])
