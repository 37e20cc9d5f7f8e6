"""Runbook operations: define (admins), list, and run (approval when the runbook is risky)."""

from __future__ import annotations

import shlex
from dataclasses import asdict
from pathlib import Path

from pydantic import BaseModel, Field, field_validator, model_validator

from apps.approvals.plans import fingerprint
from apps.core.jobs import Context, JobCancelled
from apps.core.operations import Risk, operation

from ..errors import InfrastructureError
from ..models import Runbook
from ..runbooks import Limits, ParamSpec, RunbookParamsInvalid, check_template, render, run_process
from ..specs import mapping


def runbook_named(name: str, *, enabled: bool = True) -> Runbook:
    runbook = Runbook.objects.filter(name=name).first()
    if runbook is None or (enabled and not runbook.enabled):
        raise InfrastructureError(f"There is no enabled runbook named {name!r}.", 404)
    return runbook


def runbook_scope(name: str) -> str | None:
    runbook = Runbook.objects.filter(name=name).only("risky").first()
    return f"runbook:{name}" if runbook is not None and runbook.risky else None


class RunbooksInput(BaseModel):
    include_disabled: bool = False


class RunbookInfo(BaseModel):
    name: str
    description: str
    argv: list[str]
    parameters: list[ParamSpec]
    working_dir: str
    env_names: list[str]
    timeout_seconds: int
    risky: bool
    enabled: bool


class RunbookList(BaseModel):
    runbooks: list[RunbookInfo]


def runbook_info(r: Runbook) -> RunbookInfo:
    return RunbookInfo(name=r.name, description=r.description, argv=r.argv, parameters=r.parameters, working_dir=r.working_dir,
                       env_names=sorted(r.env or {}), timeout_seconds=r.timeout_seconds, risky=r.risky, enabled=r.enabled)  # fmt: skip


@operation("infrastructure.runbooks", risk=Risk.READ)
def runbooks(ctx: Context, params: RunbooksInput) -> RunbookList:
    """List the runbooks (allow-listed commands) with their parameters; run one with infrastructure.run_runbook."""
    qs = Runbook.objects.all() if params.include_disabled else Runbook.objects.filter(enabled=True)
    return RunbookList(runbooks=[runbook_info(r) for r in qs])


class SaveRunbookInput(BaseModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    description: str = Field("", max_length=2000)
    argv: list[str] = Field(description="argv template, one element per line, e.g. kubectl / rollout / status / deployment/{name}.")
    parameters: list[ParamSpec] = Field(
        default_factory=list, description='e.g. [{"name": "name", "type": "string", "pattern": "[a-z0-9-]+"}]'
    )
    working_dir: str = Field(description="Absolute directory the command runs in.")
    env: dict[str, str] = Field(default_factory=dict, json_schema_extra={"secret": True}, description="Environment (stored encrypted).")
    keep_env: list[str] = Field(default_factory=list, description="Names of stored variables to keep with their stored value.")
    timeout_seconds: int = Field(60, ge=1, le=6 * 3600)
    output_cap_bytes: int = Field(256 * 1024, ge=1024, le=64 * 1024 * 1024)
    cpu_seconds: int = Field(60, ge=1, le=24 * 3600)
    memory_mb: int = Field(512, ge=16, le=64 * 1024)
    max_processes: int = Field(64, ge=1, le=100_000)
    max_file_mb: int = Field(64, ge=1, le=1024 * 1024)
    risky: bool = Field(False, description="Runs need approval.")
    enabled: bool = True

    _mapping = field_validator("env", mode="before")(mapping)

    @field_validator("name")
    @classmethod
    def _not_a_page(cls, value):
        if value == "new":
            raise ValueError("new is the name of the console's new-runbook page; choose another")
        return value

    @model_validator(mode="after")
    def _template(self):
        check_template(self.argv, self.parameters)
        if not Path(self.working_dir).is_absolute():
            raise ValueError("working_dir must be absolute")
        if len({p.name for p in self.parameters}) != len(self.parameters):
            raise ValueError("parameter names must be unique")
        return self


# What an approved run of a risky runbook executes, and the limits it runs within (higher = looser).
RUNBOOK_COMMAND = ("argv", "parameters", "working_dir", "env")
RUNBOOK_LIMITS = ("timeout_seconds", "output_cap_bytes", "cpu_seconds", "memory_mb", "max_processes", "max_file_mb")


def _env_after(runbook: Runbook | None, params: SaveRunbookInput) -> dict[str, str]:
    stored = (runbook.env if runbook else None) or {}
    return {**{name: stored[name] for name in params.keep_env if name in stored}, **params.env}


def runbook_values(runbook: Runbook) -> dict:
    """A stored runbook as save_runbook takes it, parameters in full (env values are secrets: not here)."""
    values = {name: getattr(runbook, name) for name in SaveRunbookInput.model_fields if name not in ("env", "keep_env")}
    values["parameters"] = [ParamSpec.model_validate(p).model_dump(mode="json") for p in runbook.parameters]
    return values


def _runbook_guard(params: SaveRunbookInput) -> tuple[dict | None, dict]:
    runbook = Runbook.objects.filter(name=params.name).first()
    fields = ("risky", *RUNBOOK_COMMAND, *RUNBOOK_LIMITS)
    after = {**params.model_dump(include=set(fields), mode="json"), "env": _env_after(runbook, params)}
    if runbook is None:
        return None, after
    return {**runbook_values(runbook), "env": runbook.env or {}}, after


def runbook_lowering_scope(params: SaveRunbookInput) -> str | None:
    """Someone else approves a change to what runs without approval or under an approval already given: marking
    a risky runbook not risky, changing what a risky runbook runs or loosening its limits, and defining a not-risky
    runbook or changing what one runs (else "mark it not risky" is "define a not-risky twin"). A new risky
    runbook, or making one risky, applies at once: its runs wait for approval, with the argv shown."""
    before, after = _runbook_guard(params)
    if before is None:
        lowered = not after["risky"]
    else:
        changed = any(before[f] != after[f] for f in RUNBOOK_COMMAND) or any(after[f] > before[f] for f in RUNBOOK_LIMITS)
        lowered = (before["risky"] and (not after["risky"] or changed)) or (not after["risky"] and changed)
    return f"runbook:{params.name}" if lowered else None


def plan_save_runbook(ctx: Context, params: SaveRunbookInput) -> dict:
    before, after = _runbook_guard(params)
    if before is not None:
        before = {f: before[f] for f in after}
    old_env, new_env = (before or {}).get("env") or {}, after["env"]
    changed = sorted(k for k in set(old_env) | set(new_env) if old_env.get(k) != new_env.get(k))
    for side in (before, after):
        if side is not None:
            side["env"] = sorted(side["env"] or {})  # values are secrets: the plan names them only
    return {"runbook": params.name, "before": before, "after": after, "env_values_changed": changed}


@operation("infrastructure.save_runbook", risk=Risk.RISKY, permission="infrastructure.manage_runbooks", guard=True,
           approval_scope=runbook_lowering_scope, planner=plan_save_runbook, target=lambda p: p.name)  # fmt: skip
def save_runbook(ctx: Context, params: SaveRunbookInput) -> RunbookInfo:
    """Define or change a runbook: an argv template with typed parameters (never a shell string), working
    directory, timeout, output cap, rlimits, environment, and whether runs need approval. A new risky runbook,
    or making one risky, applies at once (its runs wait for approval). Defining a not-risky runbook, marking one
    not risky, or changing what a runbook that was risky or stays not risky runs (argv, parameters, directory,
    environment, looser limits) waits for another person's approval; anything else applies at once."""
    env = _env_after(Runbook.objects.filter(name=params.name).first(), params)
    values = params.model_dump(exclude={"name", "keep_env"}, mode="json")
    runbook, _ = Runbook.objects.update_or_create(name=params.name, defaults={**values, "env": env})
    return runbook_info(runbook)


class RunRunbookInput(BaseModel):
    runbook: str
    params: dict[str, str | int | bool] = Field(default_factory=dict, description="Parameter values by name.")

    @model_validator(mode="after")
    def _params(self):
        try:
            runbook = runbook_named(self.runbook)
            render(runbook.argv, [ParamSpec.model_validate(p) for p in runbook.parameters], self.params, runbook.working_dir)
        except InfrastructureError as exc:
            raise ValueError(exc.message) from None
        except RunbookParamsInvalid as exc:
            raise ValueError("; ".join(f"parameter {k}: {v}" for k, v in exc.errors.items())) from None
        return self


class RunRunbookOutput(BaseModel):
    runbook: str
    argv: list[str]
    exit_code: int | None = Field(description="None when it had to be killed and did not report one.")
    timed_out: bool
    cancelled: bool
    truncated: bool = Field(description="Output went past the cap; the rest was discarded.")
    output: str
    duration_seconds: float
    processes_killed: int


def _resolved(params: RunRunbookInput) -> tuple[Runbook, list[str], Limits]:
    """The runbook, the exact argv after templating and the limits: what a run executes, and what its plan shows."""
    runbook = runbook_named(params.runbook)
    specs = [ParamSpec.model_validate(p) for p in runbook.parameters]
    argv, _ = render(runbook.argv, specs, params.params, runbook.working_dir)
    limits = Limits(timeout_seconds=runbook.timeout_seconds, output_cap_bytes=runbook.output_cap_bytes, cpu_seconds=runbook.cpu_seconds,
                    memory_mb=runbook.memory_mb, max_processes=runbook.max_processes, max_file_mb=runbook.max_file_mb)  # fmt: skip
    return runbook, argv, limits


def plan_run_runbook(ctx: Context, params: RunRunbookInput) -> dict:
    """The exact argv after templating, the working directory, environment (values masked), limits and timeout."""
    runbook, argv, limits = _resolved(params)
    return {
        "summary": f"Run runbook {runbook.name}: {shlex.join(argv)}",
        "argv": argv,
        "working_dir": runbook.working_dir,
        "env": {name: fingerprint(str(value)) for name, value in sorted((runbook.env or {}).items())},
        "limits": asdict(limits),
        "links": {"runbook": runbook.get_absolute_url()},
    }


@operation("infrastructure.run_runbook", risk=Risk.RISKY, long=True, approval_scope=lambda p: runbook_scope(p.runbook),
           target=lambda p: p.runbook, planner=plan_run_runbook)  # fmt: skip
def run_runbook(ctx: Context, params: RunRunbookInput) -> RunRunbookOutput:
    """Run a runbook with typed, validated parameters — without a shell, with rlimits, a timeout that kills the
    whole process tree, and an output cap; output streams live into the job's log. Risky runbooks need approval."""
    runbook, argv, limits = _resolved(params)
    ctx.log(f"$ {' '.join(argv)}")

    def cancelled() -> bool:
        try:
            ctx.check_cancelled()
        except JobCancelled:
            return True
        return False

    result = run_process(argv, cwd=runbook.working_dir, env=runbook.env or {}, limits=limits, on_line=ctx.log, should_stop=cancelled)
    if result.truncated:
        ctx.log(f"[output truncated at {runbook.output_cap_bytes} bytes]", "warning")
    if result.timed_out:
        ctx.log(f"[timed out after {runbook.timeout_seconds} s: killed {result.killed} process(es)]", "error")
    output = RunRunbookOutput(runbook=runbook.name, argv=argv, exit_code=result.exit_code, timed_out=result.timed_out,
                              cancelled=result.cancelled, truncated=result.truncated, output=result.output,
                              duration_seconds=round(result.duration_seconds, 3), processes_killed=result.killed)  # fmt: skip
    if result.timed_out or result.exit_code != 0:
        why = f"timed out after {runbook.timeout_seconds} s" if result.timed_out else f"exited with {result.exit_code}"
        ctx.log(why, "error")
        raise InfrastructureError(f"Runbook {runbook.name} {why}. Last output: {result.output[-300:].strip() or '(none)'}")
    return output
