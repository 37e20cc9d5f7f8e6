"""The four rollout strategies, each a short sequence of Rollout primitives.

A failure anywhere raises out of the strategy; `rollout.execute` then restores
the previous revision and records why.
"""

from __future__ import annotations

from .analysis import AnalysisFailed, Metric, Phase, prometheus_measure, run_analysis
from .health import probe
from .rollout import Paused, Rollout, describe
from .specs import AnalysisStep, canary_count


def recreate(r: Rollout) -> None:
    """Stop every old replica, then start the new ones: simple, with downtime."""
    n = r.spec.replicas
    r.progress(10, f"stopping {len(r.traffic)} old replica(s)")
    r.retire(list(r.traffic))
    r.progress(40, f"starting {n} replica(s) of r{r.target.number}")
    new = r.wait_healthy(r.start(r.target, n))
    r.route(new)
    r.progress(100, "recreated")


def rolling(r: Rollout) -> None:
    """Replace replicas `batch_size` at a time; each new batch is healthy before an old one goes."""
    n, batch = r.spec.replicas, r.options.batch_size
    old = list(r.traffic)
    new: list = []
    while len(new) < n or old:
        count = min(batch, n - len(new))
        if count:
            r.progress(100 * len(new) / n, f"batch: starting {count} replica(s) of r{r.target.number}")
            started = r.wait_healthy(r.start(r.target, count))
            new += started
            r.route(r.traffic + started)
        retiring, old = old[:batch], old[batch:]
        r.retire(retiring)
    r.progress(100, f"rolled out: {describe(r.traffic)}")


def blue_green(r: Rollout) -> None:
    """Start the new colour beside the old, switch traffic once all are healthy, keep the old colour a while for instant rollback."""
    old = list(r.traffic)
    r.progress(10, f"starting {r.spec.replicas} replica(s) of r{r.target.number} ({r.deployment.colour})")
    new = r.wait_healthy(r.start(r.target, r.spec.replicas))
    r.progress(60, f"switching traffic to {r.deployment.colour}")
    r.route(new)
    keep = r.options.keep_old_seconds
    if old:
        r.progress(70, f"keeping {describe(old)} for {keep:g} s for instant rollback")
        r.wait(keep)
        r.retire(old)
    r.progress(100, f"{r.deployment.colour} serves")


def canary(r: Rollout) -> None:
    """Argo-style steps: set_weight, pause (timed or until promoted), analysis; then full promotion."""
    steps = r.options.steps
    if r.deployment.previous_revision is None:  # as Argo Rollouts: no stable revision, nothing to compare against
        r.log("nothing serves yet: the canary steps are skipped")
        steps = []
    while r.deployment.step < len(steps):
        index = r.deployment.step
        step = steps[index]
        r.progress(100 * index / (len(steps) + 1), f"step {index + 1}/{len(steps)}: {step.describe()}")
        if step.set_weight is not None:
            set_weight(r, step.set_weight)
        elif step.pause is not None:
            if step.pause.seconds is None:
                if not r.take_promotion():
                    raise Paused(f"step {index + 1}/{len(steps)}: waiting until someone promotes (or aborts)")
                r.log("promoted: continuing")
            else:
                r.wait(step.pause.seconds, promotable=True)
        elif r.take_promotion():
            r.log("promoted: analysis skipped")
        else:
            analyse(r, step.analysis)
        r.update(step=index + 1)
    r.progress(95, "promoting: every replica on the new revision")
    set_weight(r, 100)
    r.progress(100, "promoted")


def set_weight(r: Rollout, weight: int) -> None:
    """Move to `weight`% of the replicas on the new revision: add before removing, so capacity never drops."""
    n = r.spec.replicas
    wanted = canary_count(n, weight)
    new = r.of_revision(r.target.number)
    stable = [c for c in r.traffic if c not in new]
    if wanted > len(new):
        started = r.wait_healthy(r.start(r.target, wanted - len(new)))
        r.route(r.traffic + started)
    previous = r.deployment.previous_revision
    if wanted < len(new) and previous is not None and len(stable) < n - wanted:
        started = r.wait_healthy(
            r.start(previous, n - wanted - len(stable), colour=stable[0].label("colour") if stable else None), previous
        )
        r.route(r.traffic + started)
    r.retire(stable[n - wanted :])
    r.retire(new[wanted:])
    r.log(f"weight {weight}%: {describe(r.traffic)}")


def analyse(r: Rollout, step: AnalysisStep) -> None:
    """Health of the canary replicas, always; a Prometheus query too when the step names a source."""
    canaries = r.of_revision(r.target.number)
    check, port = r.spec.healthcheck, r.spec.probe_port

    def health() -> list[float]:
        return [1.0 if probe(check, r.env.host_address, r.engine.inspect(c.name), port)[0] else 0.0 for c in canaries]

    metrics = [Metric("health", health, failure_condition="len(result) == 0 or min(result) < 1")]
    if step.query:
        metrics.append(
            Metric("prometheus", prometheus_measure(r.ctx.actor, step.source, step.query), step.success_condition, step.failure_condition)
        )
    result = run_analysis(
        metrics,
        count=step.count,
        interval=step.interval_seconds,
        failure_limit=step.failure_limit,
        inconclusive_limit=step.inconclusive_limit,
        consecutive_error_limit=step.consecutive_error_limit,
        wait=r.wait,
        report=r.log,
    )
    # Kept for the deployment page's chart per metric, whatever the verdict.
    r.update(analysis=[*r.deployment.analysis, {"step": r.deployment.step, "phase": str(result.phase), "series": result.series}])
    if result.phase == Phase.SUCCESSFUL:
        r.log(f"analysis passed: {result.message}")
    elif result.phase == Phase.INCONCLUSIVE:
        raise Paused(f"analysis inconclusive ({result.message}): promote to continue or abort to roll back")
    else:
        raise AnalysisFailed(f"analysis failed: {result.message}")


STRATEGIES = {"recreate": recreate, "rolling": rolling, "blue_green": blue_green, "canary": canary}
