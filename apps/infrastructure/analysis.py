"""Canary analysis with Argo Rollouts' semantics.

A metric is measured `count` times, `interval` apart. Each measurement is
successful, failed, inconclusive (both conditions given, neither true) or an
error (the measurement itself failed). The metric fails as soon as more than
`failure_limit` measurements failed or more than `consecutive_error_limit`
errors came in a row; it is inconclusive when more than `inconclusive_limit`
were inconclusive; otherwise it succeeds after `count` measurements, unless
every measurement of a metric was an error (Argo would pass it).

Conditions are small expressions over `result` (the list of values a query
returned): `result[0] >= 0.95`, `max(result) < 0.05`, `len(result) == 2`,
`isnan(result[0])`. They are parsed with `ast` and only a whitelist runs.
"""

from __future__ import annotations

import ast
import enum
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field

from apps.core.errors import OpsError, UnknownOperation

from .errors import InfrastructureError


class Phase(enum.StrEnum):
    SUCCESSFUL = "successful"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"
    RUNNING = "running"


class MeasurementError(Exception):
    """The measurement could not be taken (query failed, result unusable)."""


class AnalysisFailed(InfrastructureError):
    """A canary analysis failed: the deployment rolls back."""


class AnalysisUnavailable(AnalysisFailed):
    """The analysis cannot run at all (e.g. no monitoring app): the canary fails at once."""


_COMPARE = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_FUNCTIONS = {"len": len, "min": min, "max": max, "sum": sum, "abs": abs, "isnan": math.isnan}


def _eval(node, result: list[float]):
    if isinstance(node, ast.Expression):
        return _eval(node.body, result)
    if isinstance(node, ast.BoolOp):
        values = (_eval(v, result) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
        value = _eval(node.operand, result)
        return (not value) if isinstance(node.op, ast.Not) else -value
    if isinstance(node, ast.Compare):
        left = _eval(node.left, result)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, result)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_eval(node.left, result), _eval(node.right, result))
    if isinstance(node, ast.Name) and node.id == "result":
        return result
    if isinstance(node, ast.Subscript):
        return _eval(node.value, result)[_eval(node.slice, result)]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        return _FUNCTIONS[node.func.id](*(_eval(a, result) for a in node.args))
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    raise ValueError(f"not allowed in a condition: {ast.dump(node)[:60]}")


def check_condition(condition: str) -> ast.Expression:
    """Parse a condition, refusing anything outside the whitelist (raises ValueError)."""
    try:
        tree = ast.parse(condition, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"condition {condition!r} is not an expression: {exc.msg}") from None
    allowed = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.Compare, ast.BinOp,
               ast.Name, ast.Subscript, ast.Call, ast.Constant, ast.Load, *_COMPARE, *_BINARY)  # fmt: skip
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            raise ValueError(f"condition {condition!r}: {type(node).__name__} is not allowed")
        if isinstance(node, ast.Name) and node.id not in ("result", *_FUNCTIONS):
            raise ValueError(f"condition {condition!r}: unknown name {node.id!r} (use result, {', '.join(_FUNCTIONS)})")
    return tree


def evaluate(condition: str, result: list[float]) -> bool:
    try:
        return bool(_eval(check_condition(condition), result))
    except (IndexError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise MeasurementError(f"condition {condition!r} on {result}: {exc}") from None


def assess(result: list[float], success: str | None, failure: str | None) -> Phase:
    """One measurement's phase, exactly as Argo Rollouts decides it."""
    failed = evaluate(failure, result) if failure else None
    succeeded = evaluate(success, result) if success else None
    if failed:
        return Phase.FAILED
    if success and failure:
        return Phase.SUCCESSFUL if succeeded else Phase.INCONCLUSIVE
    if success:
        return Phase.SUCCESSFUL if succeeded else Phase.FAILED
    return Phase.SUCCESSFUL


@dataclass
class Metric:
    """A named measurement: `measure()` returns the values (or raises MeasurementError)."""

    name: str
    measure: Callable[[], list[float]]
    success_condition: str | None = None
    failure_condition: str | None = None


@dataclass
class MetricRun:
    metric: Metric
    phases: list[Phase] = field(default_factory=list)
    # One point per measurement for the deployment page's chart: the first value (None for an error).
    points: list[dict] = field(default_factory=list)
    consecutive_errors: int = 0
    last: str = ""

    def count(self, phase: Phase) -> int:
        return self.phases.count(phase)

    def take(self) -> Phase:
        try:
            values = self.metric.measure()
            phase = assess(values, self.metric.success_condition, self.metric.failure_condition)
            self.last = f"{self.metric.name}: {phase} ({_short(values)})"
            self.consecutive_errors = 0
            value = values[0] if values and math.isfinite(values[0]) else None
        except MeasurementError as exc:
            phase, value = Phase.ERROR, None
            self.consecutive_errors += 1
            self.last = f"{self.metric.name}: error ({exc})"
        self.phases.append(phase)
        self.points.append({"value": value, "phase": str(phase)})
        return phase


@dataclass
class AnalysisResult:
    phase: Phase
    message: str
    measurements: list[str] = field(default_factory=list)
    series: dict[str, list[dict]] = field(default_factory=dict)  # metric -> its points, in order


def run_analysis(
    metrics: list[Metric],
    *,
    count: int,
    interval: float,
    failure_limit: int = 0,
    inconclusive_limit: int = 0,
    consecutive_error_limit: int = 4,
    wait: Callable[[float], None],
    report: Callable[[str], None] = lambda _line: None,
) -> AnalysisResult:
    """Measure every metric `count` times; stop early on failure or inconclusiveness."""
    runs = [MetricRun(m) for m in metrics]
    lines: list[str] = []
    for i in range(count):
        if i:
            wait(interval)
        for run in runs:
            run.take()
            line = f"measurement {i + 1}/{count} — {run.last}"
            lines.append(line)
            report(line)
            verdict = _verdict(run, failure_limit, inconclusive_limit, consecutive_error_limit)
            if verdict is not None:
                return AnalysisResult(verdict[0], verdict[1], lines, _series(runs))
    for run in runs:
        # Unlike Argo (argoproj/argo-rollouts#4479): a metric that was never measured has not passed.
        if run.count(Phase.ERROR) == count:
            message = f"{run.metric.name}: none of {count} measurement(s) could be taken: {run.last}"
            return AnalysisResult(Phase.ERROR, message, lines, _series(runs))
    return AnalysisResult(Phase.SUCCESSFUL, f"{count} measurement(s) of {', '.join(m.name for m in metrics)} passed", lines, _series(runs))


def _series(runs: list[MetricRun]) -> dict[str, list[dict]]:
    return {run.metric.name: run.points for run in runs}


def _verdict(run: MetricRun, failure_limit: int, inconclusive_limit: int, error_limit: int) -> tuple[Phase, str] | None:
    name = run.metric.name
    if run.count(Phase.FAILED) > failure_limit:
        return Phase.FAILED, f"{name} failed {run.count(Phase.FAILED)} time(s), more than the failure limit {failure_limit}: {run.last}"
    if run.consecutive_errors > error_limit:
        return Phase.ERROR, f"{name} errored {run.consecutive_errors} times in a row: {run.last}"
    if run.count(Phase.INCONCLUSIVE) > inconclusive_limit:
        return Phase.INCONCLUSIVE, f"{name} was inconclusive {run.count(Phase.INCONCLUSIVE)} time(s): {run.last}"
    return None


def _short(values: list[float]) -> str:
    shown = ", ".join(f"{v:g}" for v in values[:5])
    return f"result=[{shown}{', …' if len(values) > 5 else ''}]"


# --- the one place measurements come from a monitoring source -----------------------


def prometheus_measure(actor, source: str, query: str) -> Callable[[], list[float]]:
    """A measure() that runs `query` on `source` through the monitoring app's
    `monitoring.query` operation (the gateway: permission checks and audit included)."""
    from apps.core import operations
    from apps.core.gateway import invoke

    try:
        operations.get("monitoring.query")
    except UnknownOperation:
        raise AnalysisUnavailable(
            "monitoring app not installed: the operation monitoring.query is not registered, "
            "so the Prometheus analysis of this canary cannot run."
        ) from None

    def measure() -> list[float]:
        try:
            outcome = invoke("monitoring.query", actor, {"source": source, "query": query}, "worker")
        except OpsError as exc:
            raise MeasurementError(exc.message) from None
        return [math.nan if s.value is None else float(s.value) for s in outcome.result.series]

    return measure
