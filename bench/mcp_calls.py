"""MCP bench: tools/call of a read operation through the console's /mcp (token auth,
gateway, durable audit row), next to two bare servers built with the SDK, in one run:

- the fair peer: a tool that does the same read and a durable insert of a row of the
  audit table's shape (what the console's call must do at least), no auth, no chain;
- the no-op peer: a tool that does nothing.

Each is one uvicorn process (the console also with two), stateless Streamable HTTP with
SSE responses, driven by the SDK's own client at 1 and 16 concurrent clients; the rows
alternate peer, console, peer, console (--rounds) so a change of machine load falls on both.
Prints calls/s, p50/p99 latency, the server's CPU per call, the clients' (this process) and how busy
the whole machine was (every core in use means a second web process has no core to run on), and the ratios.
On PostgreSQL the consoles hand their audit events to an audit appender process, as bin/console
and docker-compose run them (--no-appender: each web process appends itself); the appender's CPU
counts as the console's. Goals: console CPU per call <= 2x the fair peer's; throughput at 16 clients >= 0.8x the
fair peer's with one web process, ~2x that with two. The last rows show that scale-out with
each web process held to the same CPU budget (--cap-cores, a cgroup quota; needs root), since
uncapped a second process has no idle core here. Throwaway SQLite database, or
BENCH_DATABASE_URL (an empty PostgreSQL database); REDIS_URL if set, else an embedded Redis.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_mcp .venv/bin/python bench/mcp_calls.py [--calls 2000] [--port N]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cpucap  # isort: skip
from dashboards import ROOT, environment  # isort: skip

READ_TOOL = ("approvals_list_mine", {"limit": 1})


FAIR_TABLE = "bench_fair_events"


def bare_server(port: int) -> None:
    """The SDK's low-level server, as its own documentation builds it, with a no-op tool and the
    fair tool: the console's read (the caller's latest approval request, the same query) plus a committed insert
    of an audit-shaped row, on one worker thread per call like any sync database code."""
    import gc
    import json
    import uuid

    import anyio
    import django
    import mcp_types as types
    import uvicorn
    from mcp.server.lowlevel import Server

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from apps.approvals import services as approval_services
    from apps.audit.models import AuditEvent
    from apps.core import operations
    from apps.mcp.tools import tool_of

    columns = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
    insert = (
        f"INSERT INTO {FAIR_TABLE} ({', '.join(connection.ops.quote_name(f.column) for f in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )
    # The fair tool declares the console tool's output schema: the SDK's client validates every result
    # against it, on the same cores (a bare {"type": "object"} spared the peer's clients ~0.4 ms a call).
    agent = get_user_model().objects.get(username="bench-agent").pk  # the console's caller: the same rows
    console_tool = tool_of(operations.find(READ_TOOL[0].replace("_", ".", 1)))
    tools = [
        types.Tool(name="noop", description="noop", input_schema={"type": "object"}, output_schema={"type": "object"}),
        types.Tool(name="fair", description="fair", input_schema={"type": "object"}, output_schema=console_tool.output_schema),
    ]

    def fair(arguments: dict) -> dict:
        # The console's very read (its SQL built once per shape, apps/core/prepared.py) and result, so the ratio
        # measures what the console adds — auth, gateway, rate limit, chained audit — not a cheaper or dearer query.
        mine = approval_services._mine(user=agent, status=None, limit=1)
        found = approval_services.ApprovalList(requests=[approval_services._info(a) for a in mine]).model_dump(mode="json")
        row = AuditEvent(seq=0, at=timezone.now(), operation="approvals.list_mine", app="approvals", channel="mcp",
                         actor="bench-agent", params=arguments, outcome="ok", request_id=uuid.uuid4().hex,
                         prev_hash="0" * 64, hash="0" * 64)  # fmt: skip
        with connection.cursor() as cursor:  # autocommit: durable when it returns
            cursor.execute(insert, [f.get_db_prep_save(getattr(row, f.attname), connection) for f in columns])
        return found

    async def list_tools(ctx, params):
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx, params):
        data = await anyio.to_thread.run_sync(fair, params.arguments or {}) if params.name == "fair" else {}
        return types.CallToolResult(content=[types.TextContent(type="text", text=json.dumps(data))], structured_content=data)

    app = Server("bare", on_list_tools=list_tools, on_call_tool=call_tool).streamable_http_app(stateless_http=True)
    # Django is loaded here too (the same read): its start-up heap frozen as the console's web process
    # freezes its own (opsconsole/asgi.py), so neither pays for collecting it over and over.
    gc.freeze()
    # A stop does not wait on the connections of a bench stopped mid-run (a console stops within 10 s alike).
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, timeout_graceful_shutdown=5)


async def drive(url: str | list[str], token: str | None, tool: tuple[str, dict], clients: int, calls: int, mode: str, meter=None):
    """Calls/s, p50 and p99 ms of `clients` concurrent SDK clients in their steady state: each connects,
    lists the tools and makes 5 warm-up calls, and the clock (and `meter()`, e.g. a CPU reading, taken
    again when the last call returns: both readings are returned) starts once every client is ready.
    Given several URLs, client i talks to the i-th one round the list (a balancer spreading connections
    over web processes)."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    latencies: list[float] = []
    urls = [url] if isinstance(url, str) else url
    meter = meter or (lambda: None)
    ready, go, window = asyncio.Barrier(clients), asyncio.Event(), {}

    async def one_client(n: int, url: str) -> None:
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"} if token else None)
        async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            await client.list_tools()
            for _ in range(5):  # warm-up: connections open, output schemas compiled
                await client.call_tool(*tool)
            if await ready.wait() == 0:  # all are ready: one of them starts the clock for all
                window.update(meter=meter(), started=time.perf_counter())
                go.set()
            await go.wait()
            for _ in range(n):
                started = time.perf_counter()
                result = await client.call_tool(*tool)
                latencies.append((time.perf_counter() - started) * 1000)
                assert not result.is_error, result.content
            window["ended"], window["after"] = time.perf_counter(), meter()  # the last client to finish writes last

    await asyncio.gather(*(one_client(calls // clients, urls[i % len(urls)]) for i in range(clients)))
    ordered = sorted(latencies)
    rate = len(ordered) / (window["ended"] - window["started"])
    return rate, statistics.median(ordered), ordered[int(0.99 * (len(ordered) - 1))], window["meter"], window["after"]


def cpu_seconds(pids: list[int]) -> float:
    """CPU used so far by server processes and their children."""
    import psutil

    total = 0.0
    for pid in pids:
        proc = psutil.Process(pid)
        for p in [proc, *proc.children(recursive=True)]:
            times = p.cpu_times()
            total += times.user + times.system
    return total


def own_cpu_seconds() -> float:
    """CPU used so far by this process: the clients (the SDK's client is not free either)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float:
    """Core-seconds the whole machine (every process, this bench's and anyone else's) spent busy."""
    import psutil

    times = psutil.cpu_times()
    return times.user + times.nice + times.system + getattr(times, "irq", 0) + getattr(times, "softirq", 0)


def readings(pids: list[int]) -> tuple[float, float, float, float]:
    """The servers' CPU, the clients', the whole machine's busy core-seconds, the clock."""
    return cpu_seconds(pids), own_cpu_seconds(), machine_busy_seconds(), time.monotonic()


def each_process_cpu(pids: list[int]) -> tuple[float, list[float]]:
    """The clock and each process's CPU."""
    return time.monotonic(), [cpu_seconds([pid]) for pid in pids]


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


def scale_out(consoles: list, token: str, cores: float, args) -> None:
    """One web process against two, each held to the same CPU budget (a cgroup quota, as a container's
    `cpus:` limit) and the clients' connections spread over them as a balancer would: stateless
    scale-out shown on a machine whose cores the clients and the database also use. Uncapped, one
    process takes whatever core is idle and a second has none left to run on; capped, each is a fixed
    slice, as on a host of its own, and two should serve about twice the calls.
    `consoles`: two (Process, url) of single-process consoles."""
    from tests.support.processes import run_stoppable

    if not cpucap.available():
        print(f"scale-out with {cores} cores a process: skipped (needs a writable cgroup file system: root)")
        return
    caps = [cpucap.CpuCap(f"web-{n}", cores) for n in range(len(consoles))]
    try:
        for cap, (proc, _) in zip(caps, consoles, strict=True):
            cap.add(proc.proc.pid)
        rows = [("console, 1 process", consoles[:1]), ("console, 2 processes", consoles)]
        rates = {name: [] for name, _ in rows}
        print(f"scale-out: each web process capped at {cores} cores, 16 clients; cpu: each process's cores in use")
        for _ in range(args.rounds):  # one, two, one, two ...
            for name, pair in rows:
                meter = functools.partial(each_process_cpu, [proc.proc.pid for proc, _ in pair])
                rate, p50, p99, (started, before), (ended, after) = run_stoppable(
                    drive([url + "/mcp" for _, url in pair], token, READ_TOOL, 16, args.calls, args.mode, meter)
                )
                used = [(a - b) / (ended - started) for a, b in zip(after, before, strict=True)]
                rates[name].append(rate)
                print(f"{name + ' (capped)':<40} {16:>7} {rate:>8.0f} {p50:>8.2f} {p99:>8.2f}   cpu {' + '.join(f'{u:.2f}' for u in used)}")
        ratio = statistics.fmean(rates["console, 2 processes"]) / statistics.fmean(rates["console, 1 process"])
        print(f"{'2 processes / 1 process (capped)':<40} {16:>7} {ratio:>7.2f}x  (goal ~2x)")
    finally:
        for cap in caps:
            cap.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every side, alternating; ratios of the means")
    parser.add_argument("--mode", default="auto", help="client protocol mode: auto (newest revision) or legacy (initialize)")
    parser.add_argument("--port", type=int, default=0, help="servers on fixed ports from this one up (default: free ports)")
    parser.add_argument("--cap-cores", type=float, default=0.3, help="scale-out rows: CPU of each web process (0: no such rows)")
    parser.add_argument("--no-appender", action="store_true", help="PostgreSQL: no audit appender process, each console appends itself")
    parser.add_argument("--bare", type=int, help=argparse.SUPPRESS)  # internal: serve the bare server on this port
    args = parser.parse_args()
    if args.bare:
        return bare_server(args.bare)

    from tests.support.processes import Process, console_env, exit_on_sigterm, port_open, port_source, run_stoppable, start_console

    exit_on_sigterm()
    workdir = Path(tempfile.mkdtemp(prefix="opsconsole-bench-mcp-"))
    stop, servers = [lambda: shutil.rmtree(workdir, ignore_errors=True)], []
    try:
        stop += environment(workdir)
        import django
        import psutil

        django.setup()
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from django.core.management import call_command
        from django.db import connection

        from apps.accounts.models import ApiToken
        from apps.audit.models import AuditEvent

        call_command("migrate", verbosity=0)
        with connection.cursor() as cursor:  # the fair peer's table: the audit table's shape, no chain, no trigger
            cursor.execute(f"DROP TABLE IF EXISTS {FAIR_TABLE}")
            cursor.execute(f"CREATE TABLE {FAIR_TABLE} AS SELECT * FROM {AuditEvent._meta.db_table} WHERE 1 = 0")
        user = get_user_model().objects.get_or_create(username="bench-agent")[0]  # BENCH_DATABASE_URL: a second run too
        user.groups.add(Group.objects.get(name="viewer"))
        _, token = ApiToken.issue(user, "bench", ["viewer"])
        # Generous start-up deadlines: on a machine busy with other work, two processes importing Django take a while.
        ports = port_source(args.port)
        env, helpers = {"OPS_RATE_LIMIT_READ": "100000000/m"}, []  # helpers: processes whose CPU is the consoles'
        if connection.vendor == "postgresql" and not args.no_appender:
            env["AUDIT_APPENDER_SOCKET"] = socket = str(workdir / "audit-appender.sock")
            argv = [sys.executable, "manage.py", "audit_appender", "--socket", socket]
            appender = Process("audit-appender", argv, console_env(), cwd=ROOT)
            servers.append(appender)
            appender.wait_until(lambda: Path(socket).exists(), timeout=120, what="listening")
            helpers.append(appender.proc.pid)
        console, console_url = start_console(ports(), timeout=120, **env)
        servers.append(console)
        # A second single-process console; the clients' connections are spread over both, as a balancer
        # does (uvicorn --workers 2 shares one listening socket and one worker takes most connections).
        console2, console2_url = start_console(ports(), timeout=120, **env)
        servers.append(console2)
        port = ports()
        bare = Process("bare-mcp", [sys.executable, __file__, "--bare", str(port)], cwd=ROOT)
        servers.append(bare)
        bare.wait_until(lambda: port_open(port), timeout=120, what="listening")
        bare_url = f"http://127.0.0.1:{port}/mcp"
        print(f"for reference, the gateway alone: invoke() of {READ_TOOL[0]} in this process, p50 {gateway_ms(user):.2f} ms")
        print("audit appender process:", "yes (its CPU counts as the consoles')" if helpers else "no")
        print(f"database: {connection.vendor}; tools/call over Streamable HTTP (stateless, SSE), {args.calls} calls per row")
        # cpu ms/call: the server's processes; client: this process (the SDK clients); busy: the whole machine's
        # cores, in use by anything, over the row (100 % = every core busy: a second web process cannot add calls/s).
        print(f"{'server':<40} {'clients':>7} {'calls/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms/call':>11} {'client':>7} {'busy':>5}")
        for clients in (1, 16):
            rows = [
                ("bare SDK server, no-op tool", bare_url, None, ("noop", {}), [bare.proc.pid]),
                ("fair peer: SDK server, read + insert", bare_url, None, ("fair", {"limit": 1}), [bare.proc.pid]),
                (f"console, {READ_TOOL[0]}", console_url + "/mcp", token, READ_TOOL, [console.proc.pid, *helpers]),
                (
                    f"console x2 processes, {READ_TOOL[0]}",
                    [console_url + "/mcp", console2_url + "/mcp"],
                    token,
                    READ_TOOL,
                    [console.proc.pid, console2.proc.pid, *helpers],
                ),
            ]
            figures = {name: [] for name, *_ in rows}
            for _ in range(args.rounds):  # peer, console, peer, console ...: a change of load falls on all
                for name, url, auth, tool, pids in rows:
                    meter = functools.partial(readings, pids)
                    rate, p50, p99, before, after = run_stoppable(drive(url, auth, tool, clients, args.calls, args.mode, meter))
                    done = args.calls // clients * clients
                    cpu, own, busy, wall = (b - a for a, b in zip(before, after, strict=True))
                    cpu, own, busy = cpu / done * 1000, own / done * 1000, busy / wall / psutil.cpu_count() * 100
                    figures[name].append((rate, cpu))
                    print(f"{name:<40} {clients:>7} {rate:>8.0f} {p50:>8.2f} {p99:>8.2f} {cpu:>11.2f} {own:>7.2f} {busy:>4.0f}%")
            means = [tuple(statistics.fmean(column) for column in zip(*runs, strict=True)) for runs in figures.values()]
            (_, (fair_rate, fair_cpu), (rate, cpu), (rate2, _)) = means
            print(
                f"{'console / fair peer':<40} {clients:>7} {rate / fair_rate:>7.2f}x {'':>8} {'':>8} {cpu / fair_cpu:>10.2f}x"
                f"   (x2 processes: {rate2 / fair_rate:.2f}x)"
            )
        if args.cap_cores:
            scale_out([(console, console_url), (console2, console2_url)], token, args.cap_cores, args)
    finally:
        for server in reversed(servers):  # the appender last: a console's stop still appends (its anchor)
            server.discard()
        for stopper in reversed(stop):  # Redis before the folder it lives in
            stopper()


if __name__ == "__main__":
    main()
