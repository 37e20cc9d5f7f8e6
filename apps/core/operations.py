"""The operation registry: every capability of the console, registered once.

An operation is a plain function `(ctx, params) -> result` whose input and
output are pydantic models. Its metadata (risk, permission, description) is
the single source for the gateway, the web forms and the MCP tool list.
"""

from __future__ import annotations

import enum
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel


class Risk(enum.StrEnum):
    READ = "read"
    WRITE = "write"
    RISKY = "risky"


# The permission an operation needs when it does not name its own.
DEFAULT_PERMISSION = {
    Risk.READ: "core.run_read_ops",
    Risk.WRITE: "core.run_write_ops",
    Risk.RISKY: "core.request_risky_ops",
}


@dataclass(frozen=True)
class Operation:
    name: str
    func: Callable[..., BaseModel]
    input: type[BaseModel]
    output: type[BaseModel]
    risk: Risk
    permission: str
    title: str
    description: str
    idempotent: bool
    # Runs as a Celery job: the gateway queues it and returns the job.
    long: bool
    # For risky operations: params -> approval scope ("" = the operation's
    # default policy), or None when this particular call needs no approval.
    approval_scope: Callable[[BaseModel], str | None] | None
    # params -> what the call acts on, for the audit log ("bucket/key", "env/service").
    target: Callable[[BaseModel], str] | None
    # Shown in the web UI's operation catalogue and MCP tools/list.
    exposed: bool
    # For risky operations: (ctx, params) -> a JSON-able dict saying exactly what the call will do,
    # resolved against current state (a pure read). Approvers vote on its hash; the approved job
    # recomputes it and runs only if the hash still matches.
    planner: Callable[..., dict] | None = None
    # A guard change (protection, policy, risk flag, what a protected operation runs): when its
    # approval_scope says it lowers a guard, someone else approves it even where the scope's policy
    # exempts other operations from approval. A callable (params -> bool) says which calls with an
    # approval scope lower a guard (the others follow the scope's policy): `lowers_guard`.
    guard: bool | Callable[[BaseModel], bool] = False
    # For long operations: running the function again for the same job continues the work (it reads
    # where it got to from recorded state), so a job whose worker died is resumed rather than failed.
    resumable: bool = False
    # For a call about an approval request (a vote, an acknowledgement): params -> that request's id, named
    # on the call's audit event so the request's flow shows it.
    approval: Callable[[BaseModel], int | str] | None = None
    # For long operations: (ctx, params) -> params, run by the gateway at the call, as the caller, before the
    # job is queued and in the same transaction. It takes what only the call can bring (a file the web page
    # staged) and refuses the call with an OpsError (audited as the call's outcome); the job gets what it returns.
    admit: Callable[..., BaseModel] | None = None

    @property
    def app(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def tool_name(self) -> str:
        """MCP tool names may not contain dots in every client: `monitoring_query`."""
        return self.name.replace(".", "_")

    def target_of(self, params: BaseModel) -> str:
        if self.target is None:
            return ""
        try:
            return str(self.target(params))[:300]
        except (AttributeError, KeyError, TypeError):
            return ""

    def lowers_guard(self, params: BaseModel) -> bool:
        """Whether this call (one with an approval scope) lowers a guard: then someone else approves it,
        whatever the scope's policy says, and break-glass does not apply."""
        return bool(self.guard(params)) if callable(self.guard) else self.guard

    def scope_of(self, params: BaseModel) -> str | None:
        """The approval scope of this call, or None when it needs no approval."""
        if self.risk is not Risk.RISKY:
            return None
        if self.approval_scope is None:
            return ""
        return self.approval_scope(params)


_registry: dict[str, Operation] = {}


def operation(
    name: str,
    *,
    risk: Risk | str = Risk.READ,
    permission: str | None = None,
    title: str | None = None,
    idempotent: bool | None = None,
    long: bool = False,
    approval_scope: Callable[[BaseModel], str | None] | None = None,
    target: Callable[[BaseModel], str] | None = None,
    exposed: bool = True,
    planner: Callable[..., dict] | None = None,
    guard: bool | Callable[[BaseModel], bool] = False,
    resumable: bool = False,
    approval: Callable[[BaseModel], int | str] | None = None,
    admit: Callable[..., BaseModel] | None = None,
):
    """Register `func(ctx, params: InputModel) -> OutputModel` as an operation.

    The input and output models are read from the type hints; the docstring
    becomes the description shown to people and agents.
    """
    risk = Risk(risk)
    if guard and (risk is not Risk.RISKY or approval_scope is None or planner is None):
        raise TypeError(f"operation {name}: a guard change is risky, with an approval_scope and a planner")
    if resumable and not long:
        raise TypeError(f"operation {name}: only a long operation (a job) can be resumable")
    if admit is not None and (not long or risk is Risk.RISKY):
        raise TypeError(f"operation {name}: admit is for a long operation that needs no approval (a short one admits in its function)")

    def register(func: Callable[..., BaseModel]) -> Callable[..., BaseModel]:
        hints = typing.get_type_hints(func)
        params = list(inspect.signature(func).parameters)
        if len(params) != 2:
            raise TypeError(f"operation {name}: expected (ctx, params), got {params}")
        input_model, output_model = hints.get(params[1]), hints.get("return")
        for model in (input_model, output_model):
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise TypeError(f"operation {name}: input and output must be pydantic models")
        if name in _registry and _registry[name].func.__qualname__ != func.__qualname__:
            raise ValueError(f"operation {name} registered twice")
        if risk is Risk.RISKY and planner is None:
            raise TypeError(f"operation {name}: a risky operation needs a planner (what approvers approve)")
        doc = inspect.cleandoc(func.__doc__ or "").strip()
        if not doc:
            raise TypeError(f"operation {name}: a docstring is required (it is the tool description)")
        _registry[name] = Operation(
            name=name,
            func=func,
            input=input_model,
            output=output_model,
            risk=risk,
            permission=permission or DEFAULT_PERMISSION[risk],
            title=title or doc.splitlines()[0].rstrip("."),
            description=doc,
            idempotent=risk is Risk.READ if idempotent is None else idempotent,
            long=long,
            approval_scope=approval_scope,
            target=target,
            exposed=exposed,
            planner=planner,
            guard=guard,
            resumable=resumable,
            approval=approval,
            admit=admit,
        )
        return func

    return register


def get(name: str) -> Operation:
    from .errors import UnknownOperation

    try:
        return _registry[name]
    except KeyError:
        raise UnknownOperation(f"There is no operation named {name!r}.") from None


def find(name: str) -> Operation | None:
    return _registry.get(name)


def all_operations() -> list[Operation]:
    return sorted(_registry.values(), key=lambda op: op.name)
