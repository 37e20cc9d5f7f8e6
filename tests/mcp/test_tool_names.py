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
