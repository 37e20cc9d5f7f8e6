"""Operations on the containers the console manages: list and inspect them from
their labels, read and follow their logs, stop a service, prune what is stopped."""

from __future__ import annotations

import threading
import time
from datetime import datetime

from django.conf import settings
from pydantic import BaseModel, Field

from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from ..client import ContainerInfo, Engine
from ..deployments import service_of
from ..errors import InfrastructureError
from ..health import probe
from ..models import Environment, Service
from ..router import network_name, read_upstreams
from .environments import environment_named

# --- containers -----------------------------------------------------------------------------


class ContainersInput(BaseModel):
    environment: str
    service: str | None = Field(None, description="Only this service's containers.")
    container: str | None = Field(None, description="Inspect just this container (by name).")
    probe: bool = Field(True, description="Probe each replica's health.")


class ContainerView(BaseModel):
    name: str
    id: str
    service: str
    role: str = Field(description="replica or router")
    revision: int | None
    colour: str
    deployment: int | None
    image: str
    state: str
    status: str
    health: str = Field(description="healthy, unhealthy: why, or - when not probed")
    in_traffic: bool
    ports: dict[int, int] = Field(description="container port -> host port")
    ip: str
    labels: dict[str, str]


class ContainerList(BaseModel):
    environment: str
    containers: list[ContainerView]


@operation("infrastructure.containers", risk=Risk.READ, target=lambda p: f"{p.environment}/{p.service or p.container or '*'}")
def containers(ctx: Context, params: ContainersInput) -> ContainerList:
    """List (or inspect one of) the containers the console manages in an environment, read from the engine
    itself by their opsconsole.* labels: state, health (probed now), revision, colour and whether it receives traffic."""
    env = environment_named(params.environment)
    labels = {"environment": env.name, **({"service": params.service} if params.service else {})}
    with Engine(env) as engine:
        found = engine.containers(**labels)
        if params.container:
            found = [c for c in found if c.name == params.container]
            if not found:
                raise InfrastructureError(f"{params.container} is not a container the console manages in {env.name}.", 404)
        specs = {s.name: s for s in env.services.all()}
        upstreams = {c.label("service"): set(read_upstreams(engine, c)) for c in found if c.label("role") == "router" and c.running}
        views = [_view(c, specs.get(c.label("service")), upstreams, env, params.probe) for c in found]
    return ContainerList(environment=env.name, containers=sorted(views, key=lambda v: (v.service, v.role, v.name)))


def _view(c: ContainerInfo, service: Service | None, upstreams: dict, env: Environment, probe_it: bool) -> ContainerView:
    spec = service.parsed_spec if service else None
    network = network_name(service, spec) if service else ""
    ip = c.ips.get(network) or next(iter(c.ips.values()), "")
    role = c.label("role")
    health = "-"
    if probe_it and role == "replica" and spec is not None:
        ok, seen = probe(spec.healthcheck, env.host_address, c, spec.probe_port)
        health = "healthy" if ok else f"unhealthy: {seen}"
    return ContainerView(
        name=c.name, id=c.id[:12], service=c.label("service"), role=role, revision=int(c.label("revision") or 0) or None,
        colour=c.label("colour"), deployment=int(c.label("deployment") or 0) or None, image=c.image, state=c.state,
        status=c.status, health=health, in_traffic=role == "replica" and c.running and ip in upstreams.get(c.label("service"), ()),
        ports=c.ports, ip=ip, labels=c.labels,
    )  # fmt: skip


def managed_container(engine: Engine, env: Environment, name: str) -> ContainerInfo:
    info = engine.find(name)
    if info is None or info.label("environment") != env.name:
        raise InfrastructureError(f"{name} is not a container the console manages in {env.name}.", 404)
    return info


class LogsInput(BaseModel):
    environment: str
    container: str
    tail: int = Field(200, ge=1, le=5000, description="Last N lines.")
    since: datetime | None = Field(None, description="Only lines after this time.")


class LogsOutput(BaseModel):
    container: str
    lines: list[str] = Field(description="Each line starts with the engine's RFC 3339 timestamp.")


@operation("infrastructure.container_logs", risk=Risk.READ, target=lambda p: f"{p.environment}/{p.container}")
def container_logs(ctx: Context, params: LogsInput) -> LogsOutput:
    """The last lines of a managed container's output (stdout and stderr), with timestamps. To follow new
    output live, use infrastructure.follow_logs."""
    env = environment_named(params.environment)
    with Engine(env) as engine:
        managed_container(engine, env, params.container)
        text = engine.logs(params.container, tail=params.tail, since=int(params.since.timestamp()) if params.since else None)
    return LogsOutput(container=params.container, lines=text.splitlines())


class FollowLogsInput(BaseModel):
    environment: str
    container: str
    seconds: int = Field(60, ge=1, le=settings.INFRA_FOLLOW_LOGS_MAX_SECONDS, description="Follow for this long.")


class FollowLogsOutput(BaseModel):
    container: str
    lines: int


@operation("infrastructure.follow_logs", risk=Risk.READ, long=True, target=lambda p: f"{p.environment}/{p.container}")
def follow_logs(ctx: Context, params: FollowLogsInput) -> FollowLogsOutput:
    """Follow a managed container's new output live for N seconds, as a job: each line appears in the job's log as it comes."""
    env = environment_named(params.environment)
    count = 0
    with Engine(env) as engine:
        managed_container(engine, env, params.container)
        stream = engine.follow_logs(params.container, since=int(time.time()))
        closer = threading.Timer(params.seconds, stream.close)
        closer.start()
        buffer = b""
        try:
            for chunk in stream:
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                for line in complete:
                    ctx.log(line.decode(errors="replace"))
                    count += 1
                ctx.check_cancelled()
        except (OSError, ValueError, AttributeError):
            pass  # closing the stream from the timer ends the iteration with a socket error
        finally:
            closer.cancel()
            stream.close()
    return FollowLogsOutput(container=params.container, lines=count)


# --- engine housekeeping ---------------------------------------------------------------------


class StopInput(BaseModel):
    environment: str
    service: str
    remove: bool = Field(False, description="Also remove the containers (the router's published port is released).")


class StopOutput(BaseModel):
    stopped: list[str]
    removed: bool


def plan_stop(ctx: Context, params: StopInput) -> dict:
    """The containers the stop acts on, as the engine lists them now."""
    service = service_of(params.environment, params.service)
    with Engine(service.environment) as engine:
        found = engine.containers(environment=service.environment.name, service=service.name)
    verb = "Stop and remove" if params.remove else "Stop"
    return {
        "summary": f"{verb} every container of {service}: the service stops answering.",
        "remove": params.remove,
        "containers": sorted(f"{c.name} ({c.label('role') or 'replica'}, {'running' if c.running else 'stopped'})" for c in found),
        "links": {"service": service.get_absolute_url()},
    }


@operation("infrastructure.stop", risk=Risk.RISKY, approval_scope=lambda p: f"environment:{p.environment}",
           target=lambda p: f"{p.environment}/{p.service}", planner=plan_stop)  # fmt: skip
def stop(ctx: Context, params: StopInput) -> StopOutput:
    """Stop every container of a service (its replicas and its router): the service stops answering.
    Risky: needs approval under the environment's policy."""
    service = service_of(params.environment, params.service)
    with Engine(service.environment) as engine:
        found = engine.containers(environment=service.environment.name, service=service.name)
        for c in sorted(found, key=lambda c: c.label("role") != "router"):
            if params.remove:
                engine.remove(c.name)
            elif c.running:
                engine.stop(c.name)
    return StopOutput(stopped=[c.name for c in found], removed=params.remove)


class PruneInput(BaseModel):
    environment: str


class PruneOutput(BaseModel):
    containers: list[str]
    images: list[str]
    space_reclaimed: int


def plan_prune(ctx: Context, params: PruneInput) -> dict:
    """The stopped console containers a prune removes now (dangling images are only known as it runs)."""
    env = environment_named(params.environment)
    with Engine(env) as engine:
        stopped = [c.name for c in engine.containers(environment=env.name) if not c.running]
    return {
        "summary": f"Remove the stopped containers the console manages in {env.name}, and its dangling console-built images.",
        "containers": sorted(stopped),
    }


@operation("infrastructure.prune", risk=Risk.RISKY, approval_scope=lambda p: f"environment:{p.environment}", target=lambda p: p.environment,
           planner=plan_prune)  # fmt: skip
def prune(ctx: Context, params: PruneInput) -> PruneOutput:
    """Remove the stopped containers the console manages in an environment, and its dangling console-built images.
    Risky: stopped replicas kept for inspection are gone afterwards."""
    env = environment_named(params.environment)
    with Engine(env) as engine:
        return PruneOutput(**engine.prune(environment=env.name))
