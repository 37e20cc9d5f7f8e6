"""The benches leave nothing behind, however they end: refused at the start, failing during their
set-up, or stopped by SIGTERM (kill, timeout(1)) in the middle of a run — no temp folder, no log
file, no server of theirs still running. Each bench runs as a subprocess with TMPDIR pointed at
a folder of the test's own, which must be empty afterwards."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.support.processes import ROOT


def start(bench: str, tmp_path, *args, **env) -> tuple[subprocess.Popen, object]:
    temp = tmp_path / "tmp"
    temp.mkdir()
    out = (tmp_path / "out.txt").open("w")
    proc = subprocess.Popen([sys.executable, f"bench/{bench}.py", *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                            env={**os.environ, "TMPDIR": str(temp), **env})  # fmt: skip
    return proc, temp


def output(tmp_path) -> str:
    return (tmp_path / "out.txt").read_text()


def processes_using(temp) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if str(temp) in proc.environ().get("OPSCONSOLE_DATA_DIR", ""):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


def test_the_audit_bench_refusing_sqlite_leaves_no_temp_folder(tmp_path):
    proc, temp = start("audit", tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert proc.wait(timeout=120) != 0
    assert "measures PostgreSQL" in output(tmp_path)
    assert list(temp.iterdir()) == []


def test_the_mcp_bench_failing_in_its_set_up_leaves_no_temp_folder(tmp_path):
    proc, temp = start("mcp_calls", tmp_path, BENCH_DATABASE_URL="postgres://postgres@127.0.0.1:5432/opsconsole_no_such_database")
    assert proc.wait(timeout=120) != 0
    assert "opsconsole_no_such_database" in output(tmp_path)
    assert list(temp.iterdir()) == []


@pytest.mark.peer
def test_the_mcp_bench_stopped_by_sigterm_stops_its_servers_and_removes_its_files(tmp_path):
    proc, temp = start("mcp_calls", tmp_path, "--calls", "100000000", "--rounds", "1")
    deadline = time.monotonic() + 240
    while "tools/call over Streamable HTTP" not in output(tmp_path):  # its three servers are up
        assert proc.poll() is None and time.monotonic() < deadline, output(tmp_path)
        time.sleep(0.2)
    servers = processes_using(temp)
    assert servers
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 128 + signal.SIGTERM
    assert psutil.wait_procs(servers, timeout=60)[1] == []
    assert list(temp.iterdir()) == []


@pytest.mark.peer
def test_the_pages_bench_stopped_by_sigterm_stops_its_servers_and_removes_its_worktree(tmp_path):
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode:
        pytest.skip("the bench compares two commits of a git checkout")
    proc, temp = start("pages", tmp_path, "--base", "HEAD", "--rounds", "100000000")
    try:
        deadline = time.monotonic() + 240
        while "this checkout against" not in output(tmp_path):  # its Redis and both web processes are up
            assert proc.poll() is None and time.monotonic() < deadline, output(tmp_path)
            time.sleep(0.2)
        servers = psutil.Process(proc.pid).children(recursive=True)  # redis-server rewrites its environment: not found by it
        assert len(servers) >= 3
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    assert psutil.wait_procs(servers, timeout=60)[1] == []
    assert list(temp.iterdir()) == []
    worktrees = subprocess.run(["git", "-C", str(ROOT), "worktree", "list"], capture_output=True, text=True, check=True).stdout
    assert str(temp) not in worktrees
