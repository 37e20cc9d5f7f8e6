"""Real processes for tests: the console's ASGI server and a Celery worker run
as subprocesses on the test database, exactly as in production."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
_serial = itertools.count()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exit_on_sigterm() -> None:
    """A bench stopped by SIGTERM (kill, timeout(1)) unwinds like one stopped by Ctrl-C: its `finally`
    stops the servers it started (each in a session of its own, out of the signal's reach) and removes
    its temp folder. Without this the servers outlive it."""
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


def run_stoppable(coro):
    """asyncio.run(coro) for a bench that called exit_on_sigterm: while the loop runs, SIGTERM is the loop's to
    handle (it cancels `coro`, then SystemExit as before). The plain handler raises wherever the main thread is,
    and where that is a finalizer (a weakref callback, a __del__), Python prints the SystemExit and drops it: the
    bench ran on, its clients still calling (tests/benches/test_cleanup.py timed out so)."""
    import asyncio

    async def main():
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
        try:
            return await coro
        except asyncio.CancelledError:
            raise SystemExit(128 + signal.SIGTERM) from None
        finally:
            loop.remove_signal_handler(signal.SIGTERM)  # (which restores the default action: exit_on_sigterm again below)

    try:
        return asyncio.run(main())
    finally:
        exit_on_sigterm()


def port_source(first: int = 0) -> Callable[[], int]:
    """Ports for a run's servers, one per call: free ones, or from `first` up (a bench's --port, for a firewall)."""
    return itertools.count(first).__next__ if first else free_port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def test_database_url() -> str:
    """DATABASE_URL of the test database pytest-django created, for subprocesses."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":  # Django's backend or opsconsole.sqlite (DB_POOL: a process that imported asgi.py)
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def end_sessions_on(database: str) -> None:
    """Ends every session on `database` (through the server's maintenance database)."""
    import psycopg

    db = connection.settings_dict
    server = {"host": db["HOST"] or "127.0.0.1", "port": db["PORT"] or 5432, "user": db["USER"] or "", "password": db["PASSWORD"] or ""}
    with psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=10, **server) as pg:
        pg.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database])


def console_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=test_database_url(),
        REDIS_URL=settings.REDIS_URL,
        REDIS_PREFIX=settings.REDIS_PREFIX,
        CELERY_QUEUE=settings.CELERY_TASK_DEFAULT_QUEUE,
        OPSCONSOLE_ENV="test",
        OPSCONSOLE_DATA_DIR=str(settings.DATA_DIR),
        AUDIT_CHECKPOINT_PATH=str(settings.AUDIT_CHECKPOINT_PATH),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Process:
    """A subprocess in its own process group, with its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT):
        self.name = name
        # libpq tags every PostgreSQL connection of the process, so stop() can find what it left behind.
        self.pg_app = f"opsconsole-test-{name}-{os.getpid()}-{next(_serial)}"
        database_url = (env or {}).get("DATABASE_URL", "")
        self.database_url = database_url if database_url.startswith("postgres") else ""
        env = {**(env if env is not None else os.environ), "PGAPPNAME": self.pg_app}
        self.log = tempfile.NamedTemporaryFile(prefix=f"opsconsole-{name}-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_until(self, ready: Callable[[], bool], timeout: float = 30, what: str = "ready") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            if ready():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not {what} after {timeout} s:\n{self.tail()}")

    def tail(self, lines: int = 60) -> str:
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def stop(self, timeout: float = 30) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._end_its_database_sessions()

    def discard(self) -> None:
        """Stop it and remove its log: a bench leaves nothing in the temp folder."""
        self.stop()
        Path(self.log.name).unlink(missing_ok=True)

    def _end_its_database_sessions(self) -> None:
        """A killed client's PostgreSQL backend lives on while it waits for a lock, holding
        the ones it has: the next test's TRUNCATE would then deadlock against a dead process."""
        if not self.database_url:
            return
        import psycopg

        sql = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s"
        deadline = time.monotonic() + 60
        try:
            pg = psycopg.connect(self.database_url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError:
            return  # a database the test made unreachable (a hung peer): it holds no lock of the test database
        with pg:
            while pg.execute(sql, [self.pg_app]).fetchone()[0] and time.monotonic() < deadline:
                time.sleep(0.05)


def start_console(port: int | None = None, *, workers: int = 1, timeout: float = 30, **env: str) -> tuple[Process, str]:
    port = port or free_port()
    argv = [sys.executable, "-m", "uvicorn", "opsconsole.asgi:application", "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
            "--workers", str(workers), "--timeout-graceful-shutdown", "10"]  # fmt: skip
    proc = Process("web", argv, console_env(CONSOLE_BASE_URL=f"http://127.0.0.1:{port}", **env))
    try:
        proc.wait_until(lambda: port_open(port), timeout=timeout, what="listening")
    except BaseException:  # not listening in time (its log's tail is in the error): not left running either
        proc.stop()
        raise
    return proc, f"http://127.0.0.1:{port}"


def start_worker(*, pool: str = "threads", concurrency: int = 4, name: str = "", **env: str) -> Process:
    argv = [sys.executable, "-m", "celery", "-A", "opsconsole", "worker", "--pool", pool, "--concurrency", str(concurrency),
            "--loglevel", "INFO", "-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "--without-mingle", "--without-gossip",
            "-n", f"{name or 'test'}-{os.getpid()}@%h"]  # fmt: skip
    proc = Process("worker", argv, console_env(**env))
    proc.wait_until(lambda: " ready." in proc.output(), timeout=60, what="ready")
    return proc


class PeakRss(threading.Thread):
    """Peak resident memory of a process, sampled every few milliseconds: start(), then stop() -> bytes."""

    def __init__(self, pid: int):
        import psutil

        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.baseline = self.peak = self.proc.memory_info().rss
        self.running = True

    def run(self):
        while self.running:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.005)

    def stop(self) -> int:
        self.running = False
        self.join()
        return self.peak
