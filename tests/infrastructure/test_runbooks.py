"""Runbooks: argv templates with typed parameters, never a shell. Injection
attempts are refused or reach the program as one inert argument; runs are
limited (rlimits, timeout that kills the process tree, output cap) and their
output streams into the job's log."""

import sys
from pathlib import Path

import psutil
import pytest

from apps.approvals import services as approvals
from apps.audit.models import AuditEvent
from apps.core.errors import InvalidInput, PermissionDenied
from apps.core.gateway import invoke, run_job
from apps.core.models import Job, JobLogLine
from apps.infrastructure import runbooks
from tests.support import peers
from tests.support.approving import approve_and_run


@pytest.fixture
def define(admin, tmp_path, make_user, actor_of):
    peers.require_binary("prlimit")  # util-linux: how runs get their rlimits

    def define(name, argv, parameters=(), **fields):
        params = {"name": name, "argv": argv, "parameters": list(parameters), "working_dir": str(tmp_path), **fields}
        outcome = invoke("infrastructure.save_runbook", admin, params)
        if outcome.status == "pending":  # a not-risky runbook runs without approval: another person approves defining it
            approve_and_run(outcome.approval, actor_of(make_user("approver")))

    return define


def run(actor, name, **params) -> Job:
    outcome = invoke("infrastructure.run_runbook", actor, {"runbook": name, "params": params})
    assert outcome.status == "queued", outcome
    run_job(str(outcome.job.pk))
    return Job.objects.get(pk=outcome.job.pk)


def log_of(job: Job) -> list[str]:
    return list(job.log_lines.values_list("text", flat=True))


@pytest.mark.parametrize("attempt", ["; rm -rf {victim}", "$(touch {pwned})", "`touch {pwned}`", "x && touch {pwned}", "| touch {pwned}",
                                     "{pwned}' \"; $HOME *"])  # fmt: skip
def test_shell_syntax_in_a_value_is_one_inert_argument(attempt, define, operator, tmp_path):
    victim, pwned = tmp_path / "victim", tmp_path / "pwned"
    victim.write_text("still here")
    define("echo", ["/bin/echo", "{msg}"], [{"name": "msg", "max_length": 300}])
    value = attempt.format(victim=victim, pwned=pwned)
    job = run(operator, "echo", msg=value)
    assert job.status == "succeeded", job.error
    assert job.result["argv"] == ["/bin/echo", value]
    assert job.result["output"] == value + "\n"
    assert victim.read_text() == "still here" and not pwned.exists()


@pytest.mark.parametrize(
    ("params", "refusal"),
    [
        ({"msg": "hello\nrm -rf /"}, "control characters"),
        ({"msg": "tab\there"}, "control characters"),
        ({"msg": "--version"}, "must not start with '-'"),
        ({"msg": "-rf"}, "must not start with '-'"),
        ({"msg": "ok", "path": "../../etc"}, "without '..'"),
        ({"msg": "ok", "path": "/etc/passwd"}, "relative path"),
        ({"msg": "ok", "path": "--help"}, "must not start with '-'"),
        ({"msg": "ok", "lines": "5; reboot"}, "whole number"),
        ({"msg": "ok", "lines": "100000"}, "between 1 and 1000"),
        ({"msg": "ok", "mode": "all"}, "must be one of short, long"),
        ({"msg": "ok", "extra": "x"}, "not a parameter of this runbook"),
        ({}, "parameter msg: required"),
    ],
)
def test_refused_values_never_reach_a_process(params, refusal, define, operator):
    define("show", ["/bin/echo", "{msg}", "--lines={lines}", "{path}", "--mode={mode}"], [
        {"name": "msg"}, {"name": "path", "type": "path", "required": False},
        {"name": "lines", "type": "int", "minimum": 1, "maximum": 1000, "default": 10},
        {"name": "mode", "type": "choice", "choices": ["short", "long"], "default": "short"},
    ])  # fmt: skip
    with pytest.raises(InvalidInput, match=refusal):
        invoke("infrastructure.run_runbook", operator, {"runbook": "show", "params": params})
    assert not Job.objects.filter(operation="infrastructure.run_runbook").exists()
    event = AuditEvent.objects.get(operation="infrastructure.run_runbook")
    assert event.outcome == "failed" and refusal.split("'")[0] in event.error


def test_optional_parameters_and_typed_values_render_as_argv(define, operator, tmp_path):
    (tmp_path / "sub").mkdir()
    define("show", ["/bin/echo", "{msg}", "--lines={lines}", "{path}"], [
        {"name": "msg", "pattern": "[a-z ]+"}, {"name": "path", "type": "path", "required": False},
        {"name": "lines", "type": "int", "minimum": 1, "maximum": 1000, "default": 10},
    ])  # fmt: skip
    assert run(operator, "show", msg="hello world").result["argv"] == ["/bin/echo", "hello world", "--lines=10"]
    assert run(operator, "show", msg="hi", path="sub", lines=3).result["output"] == "hi --lines=3 sub\n"


@pytest.mark.parametrize(
    ("argv", "refusal"),
    [
        (["sh", "-c", "echo {msg}"], "would be code"),
        (["/usr/bin/python3", "-c", "print('{msg}')"], "would be code"),
        (["{msg}", "--version"], "cannot be a parameter"),
        (["echo", "{undeclared}"], "not declared"),
        (["echo", "{msg!r}"], "only plain"),
        (["echo", "{msg:>10}"], "only plain"),
    ],
)
def test_templates_that_would_let_a_value_become_code_are_refused(argv, refusal, admin, tmp_path):
    params = {"name": "bad", "argv": argv, "parameters": [{"name": "msg"}], "working_dir": str(tmp_path)}
    with pytest.raises(InvalidInput, match=refusal):
        invoke("infrastructure.save_runbook", admin, params)


def test_only_admins_define_runbooks(operator, tmp_path):
    with pytest.raises(PermissionDenied, match=r"infrastructure\.manage_runbooks"):
        invoke("infrastructure.save_runbook", operator, {"name": "x", "argv": ["true"], "working_dir": str(tmp_path)})


def test_timeout_kills_the_whole_process_tree(define, operator, tmp_path, monkeypatch):
    script = "sleep 300 & echo $! > child.pid; sh -c 'sleep 300 & echo $! > grandchild.pid; wait' & echo started; wait"
    define("hang", ["/bin/sh", "-c", script], timeout_seconds=2)

    def tree_running() -> bool:
        pids = [tmp_path / name for name in ("child.pid", "grandchild.pid")]
        return all(p.exists() and p.read_text().strip() for p in pids) and JobLogLine.objects.filter(text="started").exists()

    # The run's clock stands still until the whole tree runs and has spoken, then jumps past the timeout:
    # on a loaded machine a real 2 s could end the run before the tree exists.
    monkeypatch.setattr(runbooks, "clock", lambda: 3600.0 if tree_running() else 0.0)
    job = run(operator, "hang")
    assert job.status == "failed" and "timed out after 2 s" in job.error
    assert "started" in log_of(job)
    assert any(line.startswith("[timed out after 2 s: killed ") for line in log_of(job))
    for name in ("child.pid", "grandchild.pid"):
        pid = int((tmp_path / name).read_text())
        assert not alive(pid), f"{name} {pid} survived the timeout"


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_output_cap_keeps_the_first_bytes_and_says_so(define, operator):
    define("chatty", ["/bin/sh", "-c", "i=0; while [ $i -lt 5000 ]; do echo line $i; i=$((i+1)); done"], output_cap_bytes=1024)
    job = run(operator, "chatty")
    assert job.status == "succeeded"
    assert job.result["truncated"] is True and job.result["exit_code"] == 0
    assert len(job.result["output"]) == 1024 and job.result["output"].startswith("line 0\nline 1\n")
    assert log_of(job)[-1] == "[output truncated at 1024 bytes]"
    assert len(log_of(job)) < 200, "lines past the cap are not streamed either"


def test_rlimits_file_size_memory_and_cpu(define, operator, tmp_path, monkeypatch):
    define("big-file", ["/bin/sh", "-c", "head -c 3000000 /dev/zero > big.bin"], max_file_mb=1)
    job = run(operator, "big-file")
    assert job.status == "failed" and "exited with" in job.error
    assert (tmp_path / "big.bin").stat().st_size == 1024 * 1024

    define("big-memory", [sys.executable, "-c", "block = bytearray(1024 * 1024 * 1024)"], memory_mb=256)
    job = run(operator, "big-memory")
    assert job.status == "failed" and "MemoryError" in job.error

    define("spin", [sys.executable, "-c", "while True: pass"], cpu_seconds=1, timeout_seconds=60)
    monkeypatch.setattr(runbooks, "clock", lambda: 0.0)  # the CPU limit ends it, however slow a loaded machine makes 1 s of CPU
    job = run(operator, "spin")
    assert job.status == "failed" and not job.error.startswith("Runbook spin timed out"), job.error
    assert job.result is None and "exited with -24" in job.error  # SIGXCPU


def test_output_streams_live_in_a_clean_environment(define, operator):
    define("env", ["/bin/sh", "-c", "echo one; echo two; env"], env={"GREETING": "hello"})
    job = run(operator, "env")
    lines = log_of(job)
    assert lines[:3] == ["$ /bin/sh -c echo one; echo two; env", "one", "two"]
    assert "GREETING=hello" in lines
    assert not any(line.startswith(("DATABASE_URL=", "SECRET_KEY=", "REDIS_URL=")) for line in lines), "the worker's environment stays out"
    assert job.result["exit_code"] == 0
    listed = invoke("infrastructure.runbooks", operator, {}).result.runbooks
    assert [(r.name, r.env_names) for r in listed] == [("env", ["GREETING"])], "environment values are never shown"


def test_risky_runbook_needs_approval(define, operator, make_user, actor_of, tmp_path):
    define("wipe-cache", ["/bin/sh", "-c", "echo wiped > cache.txt"], risky=True)
    outcome = invoke("infrastructure.run_runbook", operator, {"runbook": "wipe-cache", "params": {}}, reason="cache is stale")
    assert outcome.status == "pending" and outcome.approval.scope == "runbook:wipe-cache"
    assert not (tmp_path / "cache.txt").exists()
    approvals.vote(outcome.approval.pk, actor_of(make_user("approver")), "approve")
    job = Job.objects.get(approval_id=outcome.approval.pk)
    run_job(str(job.pk))
    job.refresh_from_db()
    assert job.status == "succeeded" and Path(tmp_path / "cache.txt").read_text() == "wiped\n"
