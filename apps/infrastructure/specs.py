"""What a service runs and how a deployment rolls it out, as pydantic models.

A revision stores a `ServiceSpec` (as JSON); a deployment stores its strategy
and `StrategyOptions`. The same models validate the operations' input.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from typing import Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

IMAGE_RE = re.compile(r"^[a-z0-9][a-z0-9._/:@+-]{0,254}$", re.IGNORECASE)
MEMORY_RE = re.compile(r"^\d+[bkmg]?$", re.IGNORECASE)
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
STRATEGIES = ("recreate", "rolling", "blue_green", "canary")
Strategy = Literal["recreate", "rolling", "blue_green", "canary"]


class PortSpec(BaseModel):
    container: int = Field(ge=1, le=65535, description="Port the replicas listen on.")
    host: int | None = Field(None, ge=1, le=65535, description="Stable port the service's router publishes; empty = a free port.")


class HealthCheck(BaseModel):
    """Probed by the console itself (HTTP or TCP to each replica's published port);
    engines that do not run container healthchecks on a timer are covered too."""

    kind: Literal["http", "tcp", "running"] = Field("http", description="running = only check the container is up.")
    port: int | None = Field(None, ge=1, le=65535, description="Container port to probe; default: the first service port.")
    path: str = Field("/", max_length=300, pattern=r"^/[^\s]*$")
    expect_status: int = Field(200, ge=100, le=599)
    timeout_seconds: float = Field(2.0, gt=0, le=60)
    interval_seconds: float = Field(0.3, gt=0, le=60)
    healthy_within_seconds: float = Field(60.0, gt=0, le=3600, description="A new replica that is not healthy by then fails the deploy.")
    healthy_threshold: int = Field(1, ge=1, le=10, description="Consecutive good probes before a replica counts as healthy.")


class Resources(BaseModel):
    memory: str | None = Field(None, description='Memory limit, e.g. "256m" or "1g".')
    cpus: float | None = Field(None, gt=0, le=256)
    pids: int | None = Field(None, ge=8, le=1_000_000, description="Maximum number of processes in a replica.")

    @field_validator("memory")
    @classmethod
    def _memory(cls, value):
        if value is not None and not MEMORY_RE.match(value):
            raise ValueError('a size like "256m" or "1g"')
        return value


def probe_port_given(cls, value: HealthCheck, info: ValidationInfo) -> HealthCheck:
    """A field validator of `healthcheck` (after `ports`): so the error is the healthcheck's, not the whole spec's."""
    if value.kind != "running" and value.port is None and "ports" in info.data and not info.data["ports"]:
        raise ValueError("an http or tcp healthcheck needs a port (or the service a port)")
    return value


class ServiceSpec(BaseModel):
    """Everything a revision applies, except secret environment values (stored encrypted beside it)."""

    image: str = Field(description="Image reference: repository:tag or repository@sha256:digest.")
    command: list[str] | None = Field(None, description="Overrides the image's command (argv, no shell).")
    env: dict[str, str] = Field(default_factory=dict)
    secret_env_names: list[str] = Field(default_factory=list, description="Names of secret variables (values are never shown).")
    ports: list[PortSpec] = Field(default_factory=list)
    replicas: int = Field(1, ge=1, le=50)
    healthcheck: HealthCheck = Field(default_factory=HealthCheck)
    labels: dict[str, str] = Field(default_factory=dict)
    network: str | None = Field(None, description="Docker network; default: one per service.")
    resources: Resources = Field(default_factory=Resources)

    @field_validator("image")
    @classmethod
    def _image(cls, value):
        if not IMAGE_RE.match(value):
            raise ValueError("not an image reference")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value):
        for name in value:
            if not ENV_NAME_RE.match(name):
                raise ValueError(f"{name!r} is not a valid variable name")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value):
        if any(key.startswith("opsconsole.") for key in value):
            raise ValueError("labels starting with opsconsole. are the console's own")
        return value

    _probe_port = field_validator("healthcheck")(probe_port_given)

    @property
    def probe_port(self) -> int | None:
        if self.healthcheck.kind == "running":
            return None
        return self.healthcheck.port or self.ports[0].container


class PauseStep(BaseModel):
    seconds: float | None = Field(None, ge=0, le=86400, description="Empty: wait until someone promotes.")


class AnalysisStep(BaseModel):
    """Argo Rollouts semantics: `count` measurements `interval_seconds` apart; the
    step fails once more than `failure_limit` measurements failed. Health checks of
    the canary replicas are always measured; a Prometheus query too when `source` is set."""

    interval_seconds: float = Field(1.0, ge=0, le=3600)
    count: int = Field(3, ge=1, le=1000)
    failure_limit: int = Field(0, ge=0)
    inconclusive_limit: int = Field(0, ge=0)
    consecutive_error_limit: int = Field(4, ge=0)
    source: str | None = Field(None, description="Monitoring source name (Prometheus) for `query`.")
    query: str | None = Field(None, max_length=2000, description="PromQL; `result` in the conditions is its list of values.")
    success_condition: str | None = Field(None, max_length=300, description='e.g. "result[0] >= 0.95"')
    failure_condition: str | None = Field(None, max_length=300, description='e.g. "max(result) > 0.05"')

    @model_validator(mode="after")
    def _query(self):
        from .analysis import check_condition

        if self.query and not self.source:
            raise ValueError("a query needs a monitoring source")
        if self.query and not (self.success_condition or self.failure_condition):
            raise ValueError("a query needs a success or a failure condition")
        for condition in (self.success_condition, self.failure_condition):
            if condition:
                check_condition(condition)
        return self


class CanaryStep(BaseModel):
    set_weight: int | None = Field(None, ge=0, le=100, description="Share of replicas (percent) on the new revision.")
    pause: PauseStep | None = None
    analysis: AnalysisStep | None = None

    @model_validator(mode="after")
    def _one(self):
        if sum(x is not None for x in (self.set_weight, self.pause, self.analysis)) != 1:
            raise ValueError("each canary step is exactly one of set_weight, pause, analysis")
        return self

    def describe(self) -> str:
        if self.set_weight is not None:
            return f"set weight {self.set_weight}%"
        if self.pause is not None:
            return f"pause {self.pause.seconds:g} s" if self.pause.seconds is not None else "pause until promoted"
        return "analysis" + (" (health + Prometheus)" if self.analysis.query else " (health)")


def default_canary_steps() -> list[CanaryStep]:
    return [CanaryStep(set_weight=50), CanaryStep(analysis=AnalysisStep()), CanaryStep(set_weight=100)]


class StrategyOptions(BaseModel):
    batch_size: int = Field(1, ge=1, le=50, description="rolling: replicas replaced at a time.")
    keep_old_seconds: float = Field(30.0, ge=0, le=86400, description="blue_green: how long the old colour stays up for instant rollback.")
    drain_seconds: float = Field(1.0, ge=0, le=600, description="Time between taking a replica out of traffic and stopping it.")
    stop_timeout: int = Field(10, ge=0, le=600, description="Seconds a replica gets to stop before it is killed.")
    steps: list[CanaryStep] = Field(default_factory=default_canary_steps, description="canary: the steps, in order.")


PEM_RE = re.compile(r"(-----BEGIN [A-Z0-9 ]+-----)(.*?)(-----END [A-Z0-9 ]+-----)", re.DOTALL)


def pem(value: str) -> str:
    """PEM text as pasted, line breaks restored (a password box drops them)."""
    blocks = []
    for begin, body, end in PEM_RE.findall(value or ""):
        blocks.append("\n".join([begin, *textwrap.wrap("".join(body.split()), 64), end]))
    return "\n".join(blocks) + "\n" if blocks else (value or "").strip()


def mapping(value):
    """A name -> value mapping given as a dict, or as JSON text (what a secret form field sends)."""
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError('a JSON object, e.g. {"API_TOKEN": "..."}') from None
    return value


def canary_count(replicas: int, weight: int) -> int:
    """Replicas on the new revision for a weight (Argo's basic canary: ceil, at least one when > 0)."""
    if weight <= 0:
        return 0
    return min(replicas, max(1, math.ceil(replicas * weight / 100)))
