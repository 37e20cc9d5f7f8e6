"""Canary analysis evaluation with Argo Rollouts' semantics, fed with real
sequences of measured values (the measurement source is one small function,
so the counting, limits and conditions are checked here without a Prometheus;
the canary against a real Prometheus is in test_canary_analysis.py)."""

import math

import pytest
from pydantic import ValidationError

from apps.core import operations
from apps.infrastructure.analysis import (
    AnalysisUnavailable,
    MeasurementError,
    Metric,
    Phase,
    assess,
    check_condition,
    evaluate,
    prometheus_measure,
    run_analysis,
)
from apps.infrastructure.specs import AnalysisStep, CanaryStep, canary_count


def sequence(*values):
    """A measure() returning the next value each call; an Exception value is a failed measurement."""
    pending = list(values)

    def measure():
        value = pending.pop(0)
        if isinstance(value, Exception):
            raise value
        return value if isinstance(value, list) else [value]

    return measure


def analyse(values, *, success=None, failure=None, count=None, **limits):
    waits = []
    result = run_analysis(
        [Metric("error-rate", sequence(*values), success, failure)],
        count=count or len(values),
        interval=0.5,
        wait=waits.append,
        **limits,
    )
    return result, waits


def test_conditions_evaluate_over_the_result_list():
    assert evaluate("result[0] >= 0.95", [0.97]) is True
    assert evaluate("max(result) < 0.05 and len(result) == 2", [0.01, 0.04]) is True
    assert evaluate("min(result) / max(result) > 0.5", [1, 4]) is False
    assert evaluate("isnan(result[0])", [math.nan]) is True
    assert evaluate("not result[0] > 1 or -result[1] == -2", [3, 2]) is True
    with pytest.raises(MeasurementError, match="index out of range"):
        evaluate("result[0] > 1", [])


@pytest.mark.parametrize("condition", ["__import__('os').system('id')", "result.__class__", "open('/etc/passwd')",
                                       "(lambda: 1)()", "[x for x in result]", "result[0] > 1; 2", "os.getpid()"])  # fmt: skip
def test_conditions_outside_the_whitelist_are_refused(condition):
    with pytest.raises(ValueError):
        check_condition(condition)
    with pytest.raises(ValidationError):
        AnalysisStep(source="main", query="up", failure_condition=condition)


@pytest.mark.parametrize(
    ("value", "success", "failure", "phase"),
    [
        (0.99, "result[0] >= 0.95", None, Phase.SUCCESSFUL),
        (0.90, "result[0] >= 0.95", None, Phase.FAILED),
        (0.10, None, "result[0] > 0.05", Phase.FAILED),
        (0.01, None, "result[0] > 0.05", Phase.SUCCESSFUL),
        (0.99, "result[0] >= 0.95", "result[0] < 0.5", Phase.SUCCESSFUL),
        (0.40, "result[0] >= 0.95", "result[0] < 0.5", Phase.FAILED),
        (0.70, "result[0] >= 0.95", "result[0] < 0.5", Phase.INCONCLUSIVE),
        (0.70, None, None, Phase.SUCCESSFUL),
    ],
)
def test_one_measurement_is_assessed_as_argo_does(value, success, failure, phase):
    assert assess([value], success, failure) == phase


def test_all_measurements_pass():
    result, waits = analyse([0.99, 0.97, 0.98], success="result[0] >= 0.95")
    assert result.phase == Phase.SUCCESSFUL
    assert len(result.measurements) == 3 and waits == [0.5, 0.5], "interval between measurements, none after the last"


def test_fails_once_failures_exceed_the_failure_limit():
    result, _ = analyse([0.99, 0.90, 0.99, 0.80, 0.99], success="result[0] >= 0.95", failure_limit=1)
    assert result.phase == Phase.FAILED
    assert len(result.measurements) == 4, "it stops at the second failure, without waiting for the count"
    assert "failed 2 time(s), more than the failure limit 1" in result.message


def test_failures_within_the_limit_still_succeed():
    result, _ = analyse([0.90, 0.99, 0.99], success="result[0] >= 0.95", failure_limit=1)
    assert result.phase == Phase.SUCCESSFUL


def test_inconclusive_beyond_its_limit_stops_the_analysis():
    values = [0.99, 0.70, 0.99, 0.60]
    result, _ = analyse(values, success="result[0] >= 0.95", failure="result[0] < 0.5", inconclusive_limit=1)
    assert result.phase == Phase.INCONCLUSIVE and len(result.measurements) == 4


def test_consecutive_errors_fail_but_interleaved_errors_do_not():
    down = MeasurementError("Prometheus did not answer")
    result, _ = analyse([down] * 5, success="result[0] >= 0.95", consecutive_error_limit=4)
    assert result.phase == Phase.ERROR and "errored 5 times in a row" in result.message
    result, _ = analyse([down, down, 0.99, down, down, 0.99], success="result[0] >= 0.95", consecutive_error_limit=2)
    assert result.phase == Phase.SUCCESSFUL


def test_an_empty_result_is_an_error_not_a_pass():
    result, _ = analyse([[], [], []], failure="result[0] > 0.05", consecutive_error_limit=2)
    assert result.phase == Phase.ERROR


def test_a_metric_never_measured_does_not_pass_even_within_the_error_limit():
    down = MeasurementError("Prometheus did not answer")
    result, _ = analyse([down, down, down], success="result[0] >= 0.95")  # 3 errors in a row: within the default limit 4
    assert result.phase == Phase.ERROR
    assert result.message == "error-rate: none of 3 measurement(s) could be taken: error-rate: error (Prometheus did not answer)"


def test_every_metric_is_measured_each_round():
    health = Metric("health", sequence(1.0, 1.0, 0.0), failure_condition="min(result) < 1")
    errors = Metric("errors", sequence(0.01, 0.02, 0.01), failure_condition="result[0] > 0.05")
    result = run_analysis([health, errors], count=3, interval=0, wait=lambda _s: None)
    assert result.phase == Phase.FAILED and result.message.startswith("health failed 1 time(s)")
    assert [line.split(" — ")[1].split(":")[0] for line in result.measurements] == ["health", "errors", "health", "errors", "health"]


def test_prometheus_measurements_need_the_monitoring_app(monkeypatch, make_user, actor_of):
    monkeypatch.delitem(operations._registry, "monitoring.query", raising=False)
    with pytest.raises(AnalysisUnavailable, match=r"^monitoring app not installed"):
        prometheus_measure(actor_of(make_user("operator")), "main", "up")


def test_canary_step_and_weight_rules():
    assert [canary_count(3, w) for w in (0, 1, 33, 34, 50, 66, 67, 100)] == [0, 1, 1, 2, 2, 2, 3, 3]
    assert CanaryStep(pause={}).describe() == "pause until promoted"
    with pytest.raises(ValidationError, match="exactly one"):
        CanaryStep(set_weight=10, pause={"seconds": 1})
    with pytest.raises(ValidationError, match="needs a monitoring source"):
        AnalysisStep(query="up", success_condition="result[0] == 1")
    with pytest.raises(ValidationError, match="needs a success or a failure condition"):
        AnalysisStep(source="main", query="up")
