"""MCP bench: tools/call of a read operation through the console's /mcp (token auth,
gateway, audit), next to the SDK's bare server with a no-op tool, in the same run.

Both are one uvicorn process, stateless Streamable HTTP with SSE responses, driven
by the SDK's own client at 1 and 16 concurrent clients. Prints calls/s and p50/p99
latency. Goal: >= 300 calls/s, and <= 1.2x the bare server's latency. Throwaway
SQLite database; uses REDIS_URL if set, else an embedded Redis.

    .venv/bin/python bench/mcp.py [--calls 2000] [--mode auto|legacy]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from dashboards import ROOT, environment  # isort: skip

# This file is named mcp.py: drop its directory from the path so `import mcp` finds the SDK.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
READ_TOOL = ("approvals_list_mine", {"limit": 1})


def bare_server(port: int) -> None:
    """The SDK's low-level server with one no-op tool, as its own documentation builds it."""
    import mcp_types as types
    import uvicorn
    from mcp.server.lowlevel import Server

    tool = types.Tool(name="noop", description="Do nothing.", input_schema={"type": "object"}, output_schema={"type": "object"})

    async def list_tools(ctx, params):
        return types.ListToolsResult(tools=[tool])

    async def call_tool(ctx, params):
        return types.CallToolResult(content=[types.TextContent(type="text", text="{}")], structured_content={})

    app = Server("bare", on_list_tools=list_tools, on_call_tool=call_tool).streamable_http_app(stateless_http=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def drive(url: str, token: str | None, tool: tuple[str, dict], clients: int, calls: int, mode: str):
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    latencies: list[float] = []

    async def one_client(n: int) -> None:
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"} if token else None)
        async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            await client.list_tools()
            for _ in range(5):  # warm-up
                await client.call_tool(*tool)
            for _ in range(n):
                started = time.perf_counter()
                result = await client.call_tool(*tool)
                latencies.append((time.perf_counter() - started) * 1000)
                assert not result.is_error, result.content

    started = time.perf_counter()
    await asyncio.gather(*(one_client(calls // clients) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return len(ordered) / elapsed, statistics.median(ordered), ordered[int(0.99 * (len(ordered) - 1))]


def gateway_ms(user) -> float:
    from django.test import override_settings

    from apps.accounts.actors import Actor
    from apps.core.gateway import invoke

    actor = Actor.for_user(user)
    samples = []
    with override_settings(OPS_RATE_LIMITS={"read": "100000000/m"}):
        for _ in range(500):
            started = time.perf_counter()
            invoke(READ_TOOL[0].replace("_", ".", 1), actor, READ_TOOL[1], "mcp")
            samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per measurement")
    parser.add_argument("--mode", default="auto", help="client protocol mode: auto (newest revision) or legacy (initialize)")
    parser.add_argument("--bare", type=int, help=argparse.SUPPRESS)  # internal: serve the bare server on this port
    args = parser.parse_args()
    if args.bare:
        return bare_server(args.bare)

    workdir = Path(tempfile.mkdtemp(prefix="opsconsole-bench-mcp-"))
    stop = environment(workdir)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    from apps.accounts.models import ApiToken
    from tests.support.processes import Process, free_port, port_open, start_console

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench-agent")
    user.groups.add(Group.objects.get(name="viewer"))
    _, token = ApiToken.issue(user, "bench", ["viewer"])
    console, console_url = start_console(OPS_RATE_LIMIT_READ="100000000/m")
    port = free_port()
    bare = Process("bare-mcp", [sys.executable, __file__, "--bare", str(port)], cwd=ROOT)
    bare.wait_until(lambda: port_open(port), what="listening")
    try:
        print(f"for reference, the gateway alone: invoke() of {READ_TOOL[0]} in this process, p50 {gateway_ms(user):.2f} ms")
        print(f"tools/call over Streamable HTTP (stateless, SSE), client mode {args.mode}, {args.calls} calls per row")
        print(f"{'server':<34} {'clients':>7} {'calls/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
        for clients in (1, 16):
            rows = [
                ("bare SDK server, no-op tool", f"http://127.0.0.1:{port}/mcp", None, ("noop", {})),
                (f"console, {READ_TOOL[0]}", console_url + "/mcp", token, READ_TOOL),
            ]
            figures = []
            for name, url, auth, tool in rows:
                rate, p50, p99 = asyncio.run(drive(url, auth, tool, clients, args.calls, args.mode))
                figures.append((p50, p99))
                print(f"{name:<34} {clients:>7} {rate:>8.0f} {p50:>8.2f} {p99:>8.2f}")
            (bare_p50, bare_p99), (p50, p99) = figures
            print(f"{'console / bare':<34} {clients:>7} {'':>8} {p50 / bare_p50:>7.2f}x {p99 / bare_p99:>7.2f}x")
    finally:
        console.stop()
        bare.stop()
        for stopper in stop:
            stopper()


if __name__ == "__main__":
    main()
