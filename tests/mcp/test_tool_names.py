"""A tool name finds its operation (looked up on every tools/call) without a scan of the registry,
and only an exposed operation is a tool."""

import dataclasses

from apps.core import operations
from apps.mcp.tools import operation_of_tool


def test_every_exposed_operation_is_found_by_its_tool_name():
    exposed = [op for op in operations.all_operations() if op.exposed]
    assert exposed
    for op in exposed:
        assert operation_of_tool(op.tool_name) is op


def test_an_operation_that_is_not_exposed_or_not_there_is_no_tool(monkeypatch):
    hidden = dataclasses.replace(operations.get("approvals.list_mine"), name="approvals.hidden_list", exposed=False)
    monkeypatch.setitem(operations._registry, hidden.name, hidden)
    assert operation_of_tool("approvals_hidden_list") is None
    assert operation_of_tool("approvals_no_such_thing") is None
    assert operation_of_tool("nounderscore") is None


def test_a_name_with_more_than_one_dot_is_found_too(monkeypatch):
    nested = dataclasses.replace(operations.get("approvals.list_mine"), name="approvals.mine.list")
    monkeypatch.setitem(operations._registry, nested.name, nested)
    assert operation_of_tool("approvals_mine_list") is nested


def test_the_sdks_header_check_gets_a_schema_only_where_it_can_reject_something(monkeypatch):
    """The SDK compares Mcp-Param headers only with the arguments the schema declares a header for
    (`x-mcp-header`): where none is declared it rejects nothing, so the schema is not handed over (the
    SDK walks all of it on every call); where one is, a header that disagrees is refused."""
    from mcp.shared.inbound import validate_mcp_param_headers
    from pydantic import BaseModel, Field

    from apps.mcp.tools import input_schema_of, tool_of

    for op in (op for op in operations.all_operations() if op.exposed):
        assert input_schema_of(op.tool_name) is None
        arguments = dict.fromkeys(tool_of(op).input_schema["properties"], "x")
        headers = {f"mcp-param-{name}": "y" for name in arguments}
        assert validate_mcp_param_headers(tool_of(op).input_schema, arguments, headers) is None

    class Routed(BaseModel):
        region: str = Field(json_schema_extra={"x-mcp-header": "Region"})

    routed = dataclasses.replace(operations.get("approvals.list_mine"), name="approvals.routed", input=Routed)
    monkeypatch.setitem(operations._registry, routed.name, routed)
    schema = input_schema_of("approvals_routed")
    assert schema == tool_of(routed).input_schema
    assert validate_mcp_param_headers(schema, {"region": "eu"}, {"mcp-param-region": "us"}) is not None
    assert validate_mcp_param_headers(schema, {"region": "eu"}, {"mcp-param-region": "eu"}) is None
