"""An independent client: the MCP Inspector's CLI (Node) against the console.

0.21.2 is the newest Inspector that runs on Node 20 (later ones need Node >= 22.19)
and the first line with `--header`."""

import json
import subprocess

import pytest

from tests.support import peers

pytestmark = pytest.mark.django_db(transaction=True)

INSPECTOR = "@modelcontextprotocol/inspector@0.21.2"


def inspector(url: str, raw_token: str, *args: str) -> dict:
    npx = peers.require_binary("npx")
    argv = [npx, "-y", INSPECTOR, "--cli", url, "--transport", "http", "--header", f"Authorization: Bearer {raw_token}", *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout[done.stdout.index("{") :])


def test_inspector_lists_and_calls_tools(mcp_url, make_user, make_token):
    _, raw = make_token(make_user("viewer"))
    listed = inspector(mcp_url, raw, "--method", "tools/list")
    names = {tool["name"] for tool in listed["tools"]}
    assert "core_health" in names and "core_purge_jobs" not in names
    health = next(tool for tool in listed["tools"] if tool["name"] == "core_health")
    assert health["annotations"]["readOnlyHint"] is True and "outputSchema" in health

    called = inspector(mcp_url, raw, "--method", "tools/call", "--tool-name", "core_health", "--tool-arg", "include_workers=false")
    assert called["structuredContent"]["database"] == "ok" and not called.get("isError")
