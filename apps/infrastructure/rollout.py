"""Runs one deployment on the engine: the primitives every strategy is made of
(start replicas, wait until healthy, route traffic, retire replicas, restore
the previous revision) and the outcome bookkeeping.

What runs is always re-read from the engine (labels + the router's upstream
file), so a deployment can be resumed by another job, or by another worker.
"""

from __future__ import annotations

import time

from django.db import transaction
from django.utils import timezone

from apps.core.errors import OpsError
from apps.core.jobs import JobCancelled

from .analysis import AnalysisFailed
from .client import LABEL, ContainerInfo, Engine
from .deployments import log_line, publish_deployment
from .errors import InfrastructureError
from .health import probe
from .models import Deployment, Revision, Service
from .plans import image_id
from .router import endpoints, ensure_router, network_name, read_upstreams, service_labels, write_upstreams


class Unhealthy(InfrastructureError):
    """A new replica did not become healthy: the deployment rolls back."""


class Aborted(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Paused(Exception):
    """The deployment waits for a person (promote or abort); no job holds a worker meanwhile."""


def revision_of(container: ContainerInfo) -> int:
    return int(container.label("revision", "0") or 0)


class Rollout:
    def __init__(self, ctx, deployment: Deployment, engine: Engine):
        self.ctx, self.deployment, self.engine = ctx, deployment, engine
        self.service: Service = deployment.service
        self.env = self.service.environment
        self.target: Revision = deployment.revision
        self.spec = self.target.parsed_spec
        self.options = deployment.parsed_options
        self.network = network_name(self.service, self.spec)
        self.router: ContainerInfo | None = None
        self.replicas: list[ContainerInfo] = []
        self.traffic: list[ContainerInfo] = []
        self.restoring = False
        self.resuming = deployment.started_at is not None
        self._index = 0

    # --- reporting ------------------------------------------------------------------

    def log(self, text: str, level: str = "info") -> None:
        log_line(self.deployment, text, level)
        self.ctx.log(text, level)

    def update(self, **fields) -> None:
        for name, value in fields.items():
            setattr(self.deployment, name, value)
        self.deployment.save(update_fields=list(fields))
        publish_deployment(self.deployment)

    def progress(self, percent: float, message: str) -> None:
        """A new step: shown as the current step, logged, and reported as the job's progress."""
        self.update(step_label=message[:200])
        self.log(message)
        if not self.restoring:
            self.ctx.progress(percent, message)

    # --- observing the engine ---------------------------------------------------------

    def observe(self) -> None:
        """Re-read replicas and the router's upstreams from the engine."""
        self.router = ensure_router(self.engine, self.service, self.spec, self.log)
        self.replicas = self.engine.containers(environment=self.env.name, service=self.service.name, role="replica")
        upstreams = set(read_upstreams(self.engine, self.router))
        self.traffic = [c for c in self.replicas if c.running and c.ips.get(self.network) in upstreams]
        prefix = f"{self.env.name}-{self.service.name}-d{self.deployment.pk}-"
        used = [
            int(c.name.removeprefix(prefix)) for c in self.replicas if c.name.startswith(prefix) and c.name.removeprefix(prefix).isdigit()
        ]
        self._index = max(used, default=0)

    def prepare(self) -> None:
        self.engine.ensure_network(self.network, service_labels(self.service, "network"))
        self.observe()
        current = self.service.current_revision
        if not self.traffic and current is not None:
            adopted = [c for c in self.replicas if c.running and revision_of(c) == current.number]
            if adopted:
                self.log(f"the router had no upstreams: adopting {len(adopted)} running replica(s) of r{current.number}", "warning")
                self.route(adopted)
        if not self.resuming:
            self._remember_previous(current)
        strays = [c for c in self.replicas if c not in self.traffic]
        if strays:
            self.log(f"removing {len(strays)} replica(s) not in traffic: {', '.join(c.name for c in strays)}")
            for container in strays:
                self.engine.remove(container.name, timeout=self.options.stop_timeout)
            self.replicas = list(self.traffic)

    def _remember_previous(self, current: Revision | None) -> None:
        numbers = [revision_of(c) for c in self.traffic]
        number = max(set(numbers), key=numbers.count) if numbers else (current.number if current else None)
        previous = self.service.revisions.filter(number=number).first() if number else None
        colour = self.traffic[0].label("colour") if self.traffic else ""
        self.update(
            previous_revision=previous,
            previous_replicas=len([c for c in self.traffic if previous and revision_of(c) == previous.number]),
            colour=self.deployment.colour or ("green" if colour == "blue" else "blue"),
        )

    # --- primitives -------------------------------------------------------------------

    def start(self, revision: Revision, count: int, colour: str | None = None) -> list[ContainerInfo]:
        spec = revision.parsed_spec
        colour = colour or self.deployment.colour
        started = []
        for _ in range(count):
            self._index += 1
            name = f"{self.env.name}-{self.service.name}-d{self.deployment.pk}-{self._index}"
            labels = {
                **spec.labels,
                **service_labels(self.service, "replica"),
                LABEL + "revision": str(revision.number),
                LABEL + "colour": colour,
                LABEL + "deployment": str(self.deployment.pk),
            }
            port = spec.probe_port
            container = self.engine.run(
                name,
                image=self.pinned_image(revision),
                command=spec.command,
                env={**spec.env, **(revision.secret_env or {})},
                labels=labels,
                network=self.network,
                ports={port: (self.env.host_address, None)} if port else {},
                memory=spec.resources.memory,
                cpus=spec.resources.cpus,
                pids=spec.resources.pids,
            )
            self.replicas.append(container)
            started.append(container)
        self.log(f"started {count} replica(s) of r{revision.number} ({colour}): {', '.join(c.name for c in started)}")
        return started

    def pinned_image(self, revision: Revision) -> str:
        """The image id replicas of `revision` run: the approved one, else the tag's id at its first start, kept."""
        if not revision.image_id:
            found = image_id(self.engine, revision.parsed_spec.image)
            if found is None:
                return revision.parsed_spec.image  # unknown to the engine: its run says why
            Revision.objects.filter(pk=revision.pk, image_id="").update(image_id=found)
            revision.image_id = Revision.objects.values_list("image_id", flat=True).get(pk=revision.pk)
        return revision.image_id

    def wait_healthy(self, containers: list[ContainerInfo], revision: Revision | None = None) -> list[ContainerInfo]:
        """Probe until every container passed `healthy_threshold` probes in a row; raise Unhealthy at the deadline."""
        spec = (revision or self.target).parsed_spec
        check, port = spec.healthcheck, spec.probe_port
        self.log(
            f"waiting for {len(containers)} replica(s) to become healthy ({check.kind} check, up to {check.healthy_within_seconds:g} s)"
        )
        deadline = time.monotonic() + check.healthy_within_seconds
        streak = {c.name: 0 for c in containers}
        fresh = {c.name: c for c in containers}
        while True:
            seen = {}
            for name in streak:
                if streak[name] >= check.healthy_threshold:
                    continue
                info = fresh[name] = self.engine.inspect(name)
                if info.state in ("exited", "dead"):
                    tail = self.engine.logs(name, tail=5).strip().splitlines()
                    raise Unhealthy(f"replica {name} {info.status}" + (f"; its last output: {tail[-1][:300]}" if tail else ""))
                ok, seen[name] = probe(check, self.env.host_address, info, port)
                streak[name] = streak[name] + 1 if ok else 0
            if all(n >= check.healthy_threshold for n in streak.values()):
                self.log(f"{len(containers)} replica(s) healthy")
                return [fresh[c.name] for c in containers]
            if time.monotonic() > deadline:
                name, what = next(iter(seen.items()))
                raise Unhealthy(f"replica {name} was not healthy within {check.healthy_within_seconds:g} s: {what}")
            self.check_abort()
            time.sleep(check.interval_seconds)

    def route(self, containers: list[ContainerInfo]) -> None:
        """Make exactly these replicas receive new connections."""
        ips = [c.ips[self.network] for c in containers if c.ips.get(self.network)]
        write_upstreams(self.engine, self.router, ips)
        self.traffic = list(containers)
        self.log(f"traffic → {describe(containers) or 'nothing'}")
        publish_deployment(self.deployment)

    def retire(self, containers: list[ContainerInfo]) -> None:
        """Take replicas out of traffic, let their connections drain, stop and remove them."""
        if not containers:
            return
        names = {c.name for c in containers}
        if any(c.name in names for c in self.traffic):
            self.route([c for c in self.traffic if c.name not in names])
            time.sleep(self.options.drain_seconds)
        for container in containers:
            self.engine.remove(container.name, timeout=self.options.stop_timeout)
        self.replicas = [c for c in self.replicas if c.name not in names]
        self.log(f"removed {describe(containers)}")

    def wait(self, seconds: float, *, promotable: bool = False) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check_abort()
            if promotable and self.take_promotion():
                self.log("promoted: the pause ends early")
                return
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def check_abort(self) -> None:
        if self.restoring:
            return
        flags = Deployment.objects.filter(pk=self.deployment.pk).values("abort_requested", "reason").first()
        if flags and flags["abort_requested"]:
            raise Aborted(flags["reason"] or "aborted")
        self.ctx.check_cancelled()

    def take_promotion(self) -> bool:
        return bool(Deployment.objects.filter(pk=self.deployment.pk, promote_requested=True).update(promote_requested=False))

    def of_revision(self, number: int, containers: list[ContainerInfo] | None = None) -> list[ContainerInfo]:
        return [c for c in (self.traffic if containers is None else containers) if revision_of(c) == number]

    # --- giving the service back to the previous revision ------------------------------

    def restore(self) -> str:
        """Serve the previous revision again with as many replicas as before; remove the rest."""
        self.restoring = True
        previous = self.deployment.previous_revision
        self.observe()
        if previous is None:
            self.retire(list(self.replicas))
            return "nothing served before this deployment; its replicas were removed"
        stable = [c for c in self.replicas if c.running and revision_of(c) == previous.number]
        wanted = self.deployment.previous_replicas or previous.parsed_spec.replicas
        if len(stable) < wanted:
            colour = stable[0].label("colour") if stable else ("green" if self.deployment.colour == "blue" else "blue")
            started = self.start(previous, wanted - len(stable), colour=colour)
            stable += self.wait_healthy(started, previous)
        self.route(stable[:wanted])
        self.retire([c for c in self.replicas if c not in self.traffic])
        return f"r{previous.number} serves again ({wanted} replica(s))"


def describe(containers: list[ContainerInfo]) -> str:
    counts: dict[tuple[int, str], int] = {}
    for c in containers:
        key = (revision_of(c), c.label("colour"))
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"r{rev} ({colour}) ×{n}" for (rev, colour), n in sorted(counts.items()))


# --- running a deployment ----------------------------------------------------------------


def execute(ctx, deployment: Deployment) -> Deployment:
    """Run (or resume) a deployment to its next resting state; never leaves it 'running'."""
    from .strategies import STRATEGIES

    with Engine(deployment.service.environment) as engine:
        rollout = Rollout(ctx, deployment, engine)
        if not _claim(rollout):
            return deployment
        try:
            rollout.prepare()
            rollout.check_abort()
            STRATEGIES[deployment.strategy](rollout)
        except Paused as exc:
            rollout.update(status=Deployment.PAUSED, reason=str(exc))
            rollout.log(f"paused: {exc}")
            return deployment
        except Aborted as exc:
            _finish(rollout, Deployment.ABORTED, exc.reason)
        except JobCancelled:
            _finish(rollout, Deployment.ABORTED, "the job was cancelled")
            raise
        except (Unhealthy, AnalysisFailed) as exc:
            _finish(rollout, Deployment.ROLLED_BACK, exc.message)
        except OpsError as exc:
            _finish(rollout, Deployment.FAILED, exc.message)
        except Exception as exc:
            _finish(rollout, Deployment.FAILED, f"internal error ({type(exc).__name__})", restore=False)
            raise
        else:
            rollout.restoring = True  # nothing may interrupt the bookkeeping now
            rollout.update(status=Deployment.SUCCEEDED, finished_at=timezone.now(), step_label="done", reason="")
            _adopt(rollout.service, deployment.revision)
            served = ", ".join(endpoints(rollout.service, rollout.router)) or "no published port"
            rollout.log(f"succeeded: r{deployment.revision.number} serves on {served}")
    return deployment


def _adopt(service: Service, revision: Revision) -> None:
    """The revision now serving is the service's current one, and its image the one the next deploy uses."""
    with transaction.atomic():
        service = Service.objects.select_for_update().get(pk=service.pk)
        service.current_revision = revision
        service.spec = {**service.spec, "image": revision.spec["image"]}
        service.save(update_fields=["current_revision", "spec", "updated_at"])


def _claim(rollout: Rollout) -> bool:
    """Mark the deployment running, unless another one of the same service is under way."""
    deployment = rollout.deployment
    with transaction.atomic():
        Service.objects.select_for_update().get(pk=deployment.service_id)
        other = Deployment.objects.filter(service=deployment.service_id, status__in=[Deployment.RUNNING, Deployment.PAUSED])
        other = other.exclude(pk=deployment.pk).first()
        if other is not None:
            reason = f"deployment #{other.pk} of this service is {other.status}: promote, abort or wait for it first."
            rollout.update(status=Deployment.FAILED, reason=reason, finished_at=timezone.now())
            rollout.log(f"refused: {reason}", "error")
            return False
        rollout.update(status=Deployment.RUNNING, started_at=deployment.started_at or timezone.now())
    rollout.log(f"{'resuming' if deployment.step else 'starting'} {deployment.strategy} deployment of r{deployment.revision.number} "
                f"on {rollout.env.name} (requested by {deployment.requested_by or 'unknown'})")  # fmt: skip
    return True


def _finish(rollout: Rollout, status: str, reason: str, *, restore: bool = True) -> None:
    deployment = rollout.deployment
    rollout.log(f"{status}: {reason}", "error" if status == Deployment.FAILED else "warning")
    if restore:
        try:
            restored = rollout.restore()
        except OpsError as exc:
            # A first deploy has nothing to restore: only its own replicas to remove.
            what = "the previous revision could not be restored" if deployment.previous_revision else "its replicas could not be removed"
            status, reason = Deployment.FAILED, f"{reason}; {what}: {exc.message}"
        else:
            reason = f"{reason}; {restored}"
            if status == Deployment.ROLLED_BACK and deployment.previous_revision is None:
                status = Deployment.FAILED
    rollout.update(status=status, reason=reason[:4000], finished_at=timezone.now())
    rollout.log(f"deployment {status}: {reason}", "error" if status == Deployment.FAILED else "warning")
