"""What a deploy will apply, resolved against current state: the plan approvers vote on.

The spec shown is the one the deploy pins (the service's spec, the request's
image), with secret values replaced by fingerprints, the image's content id as
the engine knows it, and only the options the chosen strategy uses.
"""

from __future__ import annotations

from apps.approvals.plans import fingerprint
from apps.core.errors import OpsError

from .client import Engine
from .models import Revision, Service
from .specs import ServiceSpec, StrategyOptions

# The StrategyOptions fields each strategy reads (rollout.py and strategies.py).
STRATEGY_OPTIONS = {
    "recreate": ("stop_timeout",),
    "rolling": ("batch_size", "drain_seconds", "stop_timeout"),
    "blue_green": ("keep_old_seconds", "drain_seconds", "stop_timeout"),
    "canary": ("steps", "drain_seconds", "stop_timeout"),
}


def image_id(engine: Engine, image: str) -> str | None:
    """The image's content-addressed id on the engine (a re-pushed tag changes it), or None when unknown."""
    try:
        return engine.image(image).get("Id")
    except OpsError:
        return None


def shown_spec(spec: ServiceSpec, secret_env: dict | None, engine: Engine) -> dict:
    data = spec.model_dump(mode="json", exclude={"secret_env_names"})
    data["secret_env"] = {name: fingerprint(str(value)) for name, value in sorted((secret_env or {}).items())}
    data["image_id"] = image_id(engine, spec.image)
    return data


def strategy_options(strategy: str, options: StrategyOptions) -> dict:
    return options.model_dump(mode="json", include=set(STRATEGY_OPTIONS[strategy]))


def deploy_plan(service: Service, *, image: str | None, strategy: str | None, options: dict | None) -> dict:
    spec = service.parsed_spec
    if image:
        spec.image = image
    strategy = strategy or service.strategy
    resolved = StrategyOptions.model_validate({**(service.strategy_options or {}), **(options or {})})
    serving: Revision | None = service.current_revision
    with Engine(service.environment) as engine:
        after = shown_spec(spec, service.secret_env, engine)
        before = shown_spec(serving.parsed_spec, serving.secret_env, engine) if serving else {}
    return {
        "summary": f"Deploy {service} with {spec.image} ({strategy}), replacing "
        + (f"revision {serving.number}." if serving else "nothing (first deploy)."),
        "service": str(service),
        "serving_revision": serving.number if serving else None,
        "strategy": strategy,
        "options": strategy_options(strategy, resolved),
        # Where it runs: the engine, where routers (this image) publish, where health probes go.
        "environment": {f: getattr(service.environment, f) for f in ("engine_url", "router_image", "publish_address", "host_address")},
        "before": before,
        "after": after,
        "links": {"service": service.get_absolute_url()},
    }
