"""A TCP proxy that adds a one-way delay to what a client sends, as a network hop to another host
would (plus the time a busier Prometheus there takes to start answering). Each chunk is released
`delay` ms after it arrived, in order, so back-to-back chunks of one request are not delayed twice.
It only copies bytes (asyncio, no HTTP parsing): its CPU stays small next to the sides it sits
between. Run in its own process; prints its port, then serves until killed or until its standard
input closes (its parent, the bench, ended however it ended).

    .venv/bin/python bench/latency.py UPSTREAM_HOST UPSTREAM_PORT DELAY_MS [LISTEN_PORT]
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
from pathlib import Path


async def _delayed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop, queue = asyncio.get_running_loop(), asyncio.Queue()

    async def release() -> None:
        while (item := await queue.get()) is not None:
            due, chunk = item
            await asyncio.sleep(max(0.0, due - loop.time()))
            writer.write(chunk)
            await writer.drain()
        writer.close()

    sender = asyncio.create_task(release())
    while chunk := await reader.read(65536):
        queue.put_nowait((loop.time() + delay, chunk))
    queue.put_nowait(None)
    await sender


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while chunk := await reader.read(65536):
        writer.write(chunk)
        await writer.drain()
    writer.close()


async def serve(upstream: tuple[str, int], delay_ms: float, port: int) -> None:
    async def handle(client_reader, client_writer):
        upstream_reader, upstream_writer = await asyncio.open_connection(*upstream)
        with contextlib.suppress(ConnectionError):  # either side hung up: the other goes too
            await asyncio.gather(_delayed(client_reader, upstream_writer, delay_ms / 1000), _copy(upstream_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def start(upstream: tuple[str, int], delay_ms: float, port: int = 0) -> tuple[int, subprocess.Popen]:
    """The proxy in a process of its own: (its port, the process to terminate)."""
    args = [sys.executable, str(Path(__file__).resolve()), upstream[0], str(upstream[1]), str(delay_ms), str(port)]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return int(proc.stdout.readline()), proc


if __name__ == "__main__":
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    host, upstream_port, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    asyncio.run(serve((host, upstream_port), delay, int(sys.argv[4]) if len(sys.argv) > 4 else 0))
