"""Runbooks: allow-listed commands an admin defines as an argv template with
typed parameters. Never a shell: each template element becomes exactly one
argv element, and a parameter value can never split, chain or substitute.

A run gets a clean environment, rlimits (CPU, address space, processes, file
size — applied by util-linux `prlimit` before exec, so no Python runs between
fork and exec in a threaded worker), its own session, a timeout that kills the
whole process tree, an output cap, and streams its output line by line.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import string
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil
from pydantic import BaseModel, Field, model_validator

from .errors import InfrastructureError

EXIT_GRACE_SECONDS = 5
# The clock of a run's timeout, quiet period and cancellation checks; tests hold it to time a timeout exactly.
clock: Callable[[], float] = time.monotonic

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "ash", "busybox"}
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"


class ParamSpec(BaseModel):
    name: str = Field(description="Used as {name} in the argv template.")
    type: Literal["string", "int", "bool", "choice", "path"] = "string"
    description: str = ""
    required: bool = True
    default: str | int | bool | None = None
    choices: list[str] = Field(default_factory=list, description="choice: the allowed values.")
    pattern: str | None = Field(None, description="string: a regular expression the whole value must match.")
    max_length: int = Field(200, ge=1, le=4000)
    minimum: int | None = None
    maximum: int | None = None
    allow_leading_dash: bool = Field(False, description="Allow values starting with '-' (they could be read as options).")

    @model_validator(mode="after")
    def _valid(self):
        if not NAME_RE.match(self.name):
            raise ValueError(f"parameter name {self.name!r}: lower-case letters, digits, underscores")
        if self.type == "choice" and not self.choices:
            raise ValueError(f"parameter {self.name}: a choice needs choices")
        if self.pattern:
            re.compile(self.pattern)
        return self

    def clean(self, value, working_dir: str):
        """The value as argv text, or ValueError saying why it is refused."""
        if self.type == "bool":
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                value = value.lower() in ("true", "1", "yes", "on")
            if not isinstance(value, bool):
                raise ValueError("must be true or false")
            return "true" if value else "false"
        if self.type == "int":
            try:
                number = int(str(value), 10)
            except ValueError:
                raise ValueError("must be a whole number") from None
            if (self.minimum is not None and number < self.minimum) or (self.maximum is not None and number > self.maximum):
                raise ValueError(f"must be between {self.minimum} and {self.maximum}")
            return str(number)
        text = str(value)
        if CONTROL_RE.search(text):
            raise ValueError("control characters (newlines, tabs, NUL) are not allowed")
        if len(text) > self.max_length:
            raise ValueError(f"at most {self.max_length} characters")
        if text.startswith("-") and not self.allow_leading_dash:
            raise ValueError("must not start with '-' (it would be read as an option)")
        if self.type == "choice" and text not in self.choices:
            raise ValueError(f"must be one of {', '.join(self.choices)}")
        if self.pattern and not re.fullmatch(self.pattern, text):
            raise ValueError(f"must match {self.pattern}")
        if self.type == "path":
            root = Path(working_dir).resolve()
            if not text or Path(text).is_absolute() or ".." in Path(text).parts:
                raise ValueError("must be a relative path inside the working directory, without '..'")
            if not (root / text).resolve().is_relative_to(root):
                raise ValueError("resolves outside the working directory")
        return text


def placeholders(element: str) -> list[str]:
    """The {name} placeholders of one template element; refuses anything fancier."""
    names = []
    for _literal, field, spec, conversion in string.Formatter().parse(element):
        if field is None:
            continue
        if spec or conversion or not NAME_RE.match(field):
            raise ValueError(f"template element {element!r}: only plain {{name}} placeholders are allowed")
        names.append(field)
    return names


def check_template(argv: list[str], params: list[ParamSpec]) -> None:
    if not argv:
        raise ValueError("argv must name a program")
    if placeholders(argv[0]):
        raise ValueError("the program (first argv element) cannot be a parameter")
    declared = {p.name for p in params}
    for element in argv:
        for name in placeholders(element):
            if name not in declared:
                raise ValueError(f"{{{name}}} is used in the template but not declared as a parameter")
    program = Path(argv[0]).name
    if program in SHELLS or program.startswith("python") or program in ("perl", "ruby", "node", "env"):
        for i, element in enumerate(argv[:-1]):
            if element in ("-c", "-e", "-ec", "-lc") and placeholders(argv[i + 1]):
                raise ValueError("a parameter inside an interpreter's inline script would be code: pass it as a separate argument instead")


def render(argv: list[str], params: list[ParamSpec], values: dict, working_dir: str) -> tuple[list[str], dict[str, str]]:
    """The argv to run, or ValueError with {param: message} for every refused value."""
    errors: dict[str, str] = {}
    cleaned: dict[str, str] = {}
    known = {p.name for p in params}
    for extra in sorted(set(values) - known):
        errors[extra] = "not a parameter of this runbook"
    for spec in params:
        value = values.get(spec.name, spec.default)
        if value is None or value == "":
            if spec.required:
                errors[spec.name] = "required"
            continue
        try:
            cleaned[spec.name] = spec.clean(value, working_dir)
        except ValueError as exc:
            errors[spec.name] = str(exc)
    if errors:
        raise RunbookParamsInvalid(errors)
    out = []
    for element in argv:
        names = placeholders(element)
        if any(n not in cleaned for n in names):
            continue  # an optional parameter left empty drops its element
        out.append(element.format(**{n: cleaned[n] for n in names}) if names else element)
    return out, cleaned


class RunbookParamsInvalid(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class Limits:
    timeout_seconds: float
    output_cap_bytes: int
    cpu_seconds: int
    memory_mb: int
    max_processes: int
    max_file_mb: int


@dataclass
class RunResult:
    exit_code: int | None
    output: str
    truncated: bool
    timed_out: bool
    cancelled: bool
    duration_seconds: float
    killed: int  # processes killed when the run ended


def run_process(argv: list[str], *, cwd: str, env: dict[str, str], limits: Limits, on_line: Callable[[str], None],
                should_stop: Callable[[], bool] = lambda: False) -> RunResult:  # fmt: skip
    """Run argv without a shell; stream lines to `on_line`; kill the tree on timeout or stop."""
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        raise InfrastructureError("prlimit (util-linux) is not installed on this worker: runbooks cannot be limited, so they do not run.")
    if not Path(cwd).is_dir():
        raise InfrastructureError(f"The runbook's working directory {cwd} does not exist on this worker.")
    mb = 1024 * 1024
    command = [
        prlimit,
        f"--cpu={limits.cpu_seconds}:{limits.cpu_seconds + 2}",  # SIGXCPU at the limit, SIGKILL 2 s of CPU later
        f"--as={limits.memory_mb * mb}",
        f"--nproc={limits.max_processes}",
        f"--fsize={limits.max_file_mb * mb}",
        "--",
        *argv,
    ]
    clean_env = {"PATH": BASE_PATH, "LANG": "C.UTF-8", "HOME": cwd, **env}
    started = clock()
    try:
        proc = subprocess.Popen(command, cwd=cwd, env=clean_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)  # fmt: skip
    except OSError as exc:
        raise InfrastructureError(f"Could not start {argv[0]}: {exc.strerror or exc}") from exc
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
    reader.start()
    kept, size, truncated, timed_out, cancelled = [], 0, False, False, False
    deadline, quiet_since, checked = started + limits.timeout_seconds, started, 0.0
    try:
        while True:
            try:
                chunk = lines.get(timeout=0.1)
            except queue.Empty:
                chunk = b""
            if chunk is None:  # end of output: every holder of the pipe has closed it
                # A program closes its output a moment before it exits (coreutils' close_stdout): let it
                # exit with its own status rather than be killed in between, on a loaded machine too.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=EXIT_GRACE_SECONDS)
                break
            now = clock()
            if chunk:
                quiet_since = now
                room = limits.output_cap_bytes - size
                truncated = truncated or len(chunk) > room
                if room > 0:
                    piece = chunk[:room]
                    size += len(piece)
                    kept.append(piece.decode(errors="replace"))
                    on_line(kept[-1].rstrip("\n"))
            if now > deadline:
                timed_out = True
                break
            if now - checked >= 0.5:  # a cancellation check costs a query: not once per line
                checked = now
                if should_stop():
                    cancelled = True
                    break
            # The program exited, but something it started keeps the output open and silent: end it.
            if proc.poll() is not None and now - quiet_since > 1.0:
                break
    except BaseException:  # a callback raised (the job's lease was lost, the database went away): end the tree too
        kill_tree(proc)
        raise
    killed = kill_tree(proc)
    try:
        exit_code = proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        exit_code = None
    reader.join(timeout=2)
    return RunResult(exit_code, "".join(kept), truncated, timed_out, cancelled, clock() - started, killed)


def _pump(stream, out: queue.Queue) -> None:
    for line in iter(stream.readline, b""):
        out.put(line)
    stream.close()
    out.put(None)


def kill_tree(proc: subprocess.Popen, grace: float = 2.0) -> int:
    """Kill the process, its descendants and anything left in its session: TERM, then KILL.

    The process itself is signalled and reaped through its Popen only: were psutil
    to reap it, its exit status would be lost (Popen would then report 0).
    """
    pid = proc.pid
    targets: dict[int, psutil.Process] = {}
    with contextlib.suppress(psutil.NoSuchProcess):
        targets.update({p.pid: p for p in psutil.Process(pid).children(recursive=True)})
    for process in psutil.process_iter():
        try:
            if process.pid != pid and os.getsid(process.pid) == pid:
                targets[process.pid] = process
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    alive = [p for p in targets.values() if _running(p)]
    root_alive = proc.poll() is None
    if root_alive:
        proc.terminate()
    for process in alive:
        _signal(process, signal.SIGTERM)
    _gone, still = psutil.wait_procs(alive, timeout=grace)
    if root_alive:
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
    for process in still:
        _signal(process, signal.SIGKILL)
    psutil.wait_procs(still, timeout=grace)
    return len(alive) + root_alive


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal(process: psutil.Process, sig: int) -> None:
    with contextlib.suppress(psutil.Error):
        process.send_signal(sig)
