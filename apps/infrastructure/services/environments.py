"""Operations on environments (Docker engines) and the services defined in them."""

from __future__ import annotations

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from apps.approvals.models import ApprovalPolicy
from apps.approvals.plans import fingerprint
from apps.core.errors import InvalidInput
from apps.core.jobs import Context
from apps.core.operations import Risk, operation
from apps.core.outbound import OutboundRefused

from ..client import Engine, outbound_guard
from ..errors import InfrastructureError
from ..models import ENVIRONMENT_SCOPED_OPERATIONS, Environment, Service
from ..router import endpoints
from ..specs import ENV_NAME_RE, HealthCheck, PortSpec, Resources, ServiceSpec, Strategy, StrategyOptions, mapping, pem, probe_port_given

RESERVED_NAMES = {"deployments", "runbooks", "build", "environments"}  # /infrastructure/<environment>/... shares their URLs


def environment_named(name: str) -> Environment:
    env = Environment.objects.filter(name=name).first()
    if env is None:
        raise InfrastructureError(f"There is no environment named {name!r}.", 404)
    return env


def environment_scope(name: str) -> str | None:
    """Approval scope of a deploy: the environment's, when it is protected; None = no approval."""
    env = Environment.objects.filter(name=name).only("protected").first()
    return f"environment:{name}" if env is not None and env.protected else None


# --- environments ------------------------------------------------------------------------


class EnvironmentsInput(BaseModel):
    check: bool = Field(False, description="Also ask each engine for its version (reachability).")


class EnvironmentInfo(BaseModel):
    name: str
    engine_url: str
    tls: bool
    protected: bool
    quorum: int
    services: list[str]
    reachable: bool | None = None
    engine_version: str | None = None
    error: str | None = None


class EnvironmentList(BaseModel):
    environments: list[EnvironmentInfo]


@operation("infrastructure.environments", risk=Risk.READ)
def environments(ctx: Context, params: EnvironmentsInput) -> EnvironmentList:
    """List environments (Docker engines): endpoint, protection, approval quorum, services; optionally check each engine answers."""
    out = []
    for env in Environment.objects.prefetch_related("services"):
        info = EnvironmentInfo(name=env.name, engine_url=env.engine_url, tls=bool(env.tls_client_cert), protected=env.protected,
                               quorum=env.quorum, services=[s.name for s in env.services.all()])  # fmt: skip
        if params.check:
            try:
                with Engine(env) as engine:
                    version = engine.version()
                info.reachable, info.engine_version = True, f"{version.get('Version')} (API {version.get('ApiVersion')})"
            except InfrastructureError as exc:
                info.reachable, info.error = False, exc.message
            except Exception as exc:  # PeerUnavailable and friends: report, list the others
                info.reachable, info.error = False, getattr(exc, "message", str(exc))
        out.append(info)
    return EnvironmentList(environments=out)


class SaveEnvironmentInput(BaseModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    engine_url: str = Field(pattern=r"^(unix:///|tcp://|ssh://)\S+$", description="unix:///run/docker.sock or tcp://host:2376")
    tls_ca_cert: str = Field("", json_schema_extra={"widget": "textarea"}, description="PEM; for tcp:// with TLS.")
    tls_client_cert: str = Field("", json_schema_extra={"widget": "textarea"}, description="PEM client certificate.")
    tls_client_key: str = Field("", json_schema_extra={"secret": True}, description="PEM client key; empty keeps the stored one.")
    protected: bool = Field(False, description="Deploys, stops and prunes need approval.")
    quorum: int = Field(1, ge=1, le=10, title="Approvals required", description="Approvals a protected environment needs.")
    publish_address: str = Field("127.0.0.1", description="Where routers publish service ports (0.0.0.0 for every interface).")
    host_address: str = Field("127.0.0.1", description="The engine's host as the console reaches it (health probes).")
    router_image: str = Field("busybox:1.36", description="Image with busybox sh and nc, present on the engine.")
    timeout_seconds: int = Field(30, ge=1, le=600)

    _pem = field_validator("tls_ca_cert", "tls_client_cert", "tls_client_key")(pem)

    @field_validator("name")
    @classmethod
    def _not_a_page(cls, value):
        if value in RESERVED_NAMES:
            raise ValueError(f"{value} is the name of a console page; choose another")
        return value


def environment_values(env: Environment) -> dict:
    """What save_environment would be given to leave `env` as it is (the TLS key never: empty keeps it)."""
    return {name: getattr(env, name) for name in SaveEnvironmentInput.model_fields if name != "tls_client_key"}


class SavedEnvironment(BaseModel):
    name: str
    created: bool
    protected: bool
    quorum: int


# What guards a protected environment: its protection, the quorum its deploys, stops and prunes need, and
# everything its approved operations reach or run that the deploy's own plan does not show: the engine (and
# the TLS identity it is reached with), where routers publish, where health probes go, the router image.
ENVIRONMENT_GUARD = ("protected", "quorum", "engine_url", "tls_ca_cert", "tls_client_cert", "tls_client_key", "host_address",
                     "publish_address", "router_image")  # fmt: skip
TLS_FIELDS = ("tls_ca_cert", "tls_client_cert", "tls_client_key")


def _quorum_now(env: Environment) -> int:
    """What the environment's risky operations need now: saving it sets their policy rows to its quorum,
    so a stricter row saved since (approvals.save_policy) counts as the quorum being lowered from."""
    rows = ApprovalPolicy.objects.filter(operation__in=ENVIRONMENT_SCOPED_OPERATIONS, scope=env.approval_scope, requires_approval=True)
    return max([env.quorum, *rows.values_list("quorum", flat=True)]) if env.protected else env.quorum


def _environment_guard(params: SaveEnvironmentInput) -> tuple[dict | None, dict]:
    env = Environment.objects.filter(name=params.name).first()
    after = {f: getattr(params, f) for f in ENVIRONMENT_GUARD}
    after["tls_client_key"] = params.tls_client_key or (env.tls_client_key if env else "")  # empty keeps the stored one
    before = {f: getattr(env, f) for f in ENVIRONMENT_GUARD} | {"quorum": _quorum_now(env)} if env else None
    for side in (before, after):
        for f in TLS_FIELDS if side else ():
            side[f] = fingerprint(side[f]) if side[f] else ""  # the key is a secret; PEM blocks do not diff readably
    return before, after


def environment_lowering_scope(params: SaveEnvironmentInput) -> str | None:
    """For a protected environment, unprotecting, a smaller quorum, or another engine, TLS identity, publish
    or probe address or router image needs someone else's approval."""
    before, after = _environment_guard(params)
    if before is None or not before["protected"]:
        return None
    reached = [f for f in ENVIRONMENT_GUARD if f not in ("protected", "quorum")]
    lowered = not after["protected"] or after["quorum"] < before["quorum"] or any(before[f] != after[f] for f in reached)
    return f"environment:{params.name}" if lowered else None


def plan_save_environment(ctx: Context, params: SaveEnvironmentInput) -> dict:
    before, after = _environment_guard(params)
    return {"environment": params.name, "before": before, "after": after}


@operation("infrastructure.save_environment", risk=Risk.RISKY, permission="infrastructure.manage_environments", guard=True,
           approval_scope=environment_lowering_scope, planner=plan_save_environment, target=lambda p: p.name)  # fmt: skip
def save_environment(ctx: Context, params: SaveEnvironmentInput) -> SavedEnvironment:
    """Create or update an environment (a Docker engine endpoint). A protected environment's quorum becomes
    the approval policy of its deploys, stops and prunes. The TLS client key is stored encrypted and never shown.
    Protecting or raising the quorum applies at once; unprotecting, lowering the quorum or changing a protected
    environment's engine waits for another person's approval."""
    from apps.core.resilience import forget_breaker

    errors = {}
    try:
        if params.engine_url.startswith("tcp://"):
            outbound_guard().check(params.engine_url, schemes=("tcp",))
    except OutboundRefused as exc:
        errors["engine_url"] = exc.message
    try:  # health probes go there (checked here only: the probes dial the address given)
        outbound_guard().pin(params.host_address, 80)
    except OutboundRefused as exc:
        errors["host_address"] = exc.message
    if errors:
        raise InvalidInput(errors)
    env = Environment.objects.filter(name=params.name).first()
    created = env is None
    env = env or Environment(name=params.name)
    fields = params.model_dump(exclude={"name", "tls_client_key"})
    for key, value in fields.items():
        setattr(env, key, value)
    if params.tls_client_key:
        env.tls_client_key = params.tls_client_key
    env.save()
    forget_breaker(f"docker:{env.name}")
    return SavedEnvironment(name=env.name, created=created, protected=env.protected, quorum=env.quorum)


# --- services ------------------------------------------------------------------------------


class ServicesInput(BaseModel):
    environment: str
    engine: bool = Field(True, description="Also read the routers from the engine for the published endpoints.")


class ServiceInfo(BaseModel):
    name: str
    image: str
    replicas: int
    strategy: str
    current_revision: int | None
    last_deployment: int | None
    last_status: str | None
    endpoints: list[str] = Field(default_factory=list, description="host:port where the service's router answers.")


class ServiceList(BaseModel):
    environment: str
    services: list[ServiceInfo]
    engine_error: str | None = None


@operation("infrastructure.services", risk=Risk.READ, target=lambda p: p.environment)
def services(ctx: Context, params: ServicesInput) -> ServiceList:
    """List an environment's services: image, replicas, strategy, current revision, last deployment and published endpoints."""
    env = environment_named(params.environment)
    routers, error = {}, None
    if params.engine:
        try:
            with Engine(env) as engine:
                routers = {c.label("service"): c for c in engine.containers(environment=env.name, role="router")}
        except Exception as exc:  # the list is still useful without the engine
            error = getattr(exc, "message", str(exc))
    out = []
    for service in env.services.select_related("current_revision"):
        last = service.deployments.order_by("-created_at", "-id").first()
        spec = service.parsed_spec
        out.append(ServiceInfo(
            name=service.name, image=spec.image, replicas=spec.replicas, strategy=service.strategy,
            current_revision=service.current_revision.number if service.current_revision else None,
            last_deployment=last.pk if last else None, last_status=last.status if last else None,
            endpoints=endpoints(service, routers.get(service.name)),
        ))  # fmt: skip
    return ServiceList(environment=env.name, services=out, engine_error=error)


class SaveServiceInput(BaseModel):
    environment: str
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    image: str = Field(description="repository:tag or repository@sha256:digest")
    command: list[str] | None = Field(None, description="argv overriding the image's command; one element per line.")
    env: dict[str, str] = Field(default_factory=dict, description="Plain environment variables (JSON object).")
    secret_env: dict[str, str] = Field(
        default_factory=dict,
        json_schema_extra={"secret": True},
        description="Secret variables to set or replace; stored encrypted, never shown.",
    )
    remove_secret_env: list[str] = Field(default_factory=list, description="Names of secret variables to delete.")
    ports: list[PortSpec] = Field(default_factory=list, description='e.g. [{"container": 8080, "host": 18080}]')
    replicas: int = Field(1, ge=1, le=50)
    healthcheck: HealthCheck = Field(default_factory=HealthCheck)
    labels: dict[str, str] = Field(default_factory=dict)
    network: str | None = None
    resources: Resources = Field(default_factory=Resources)
    strategy: Strategy = "rolling"
    strategy_options: StrategyOptions = Field(default_factory=StrategyOptions)

    _mapping = field_validator("secret_env", mode="before")(mapping)
    _probe_port = field_validator("healthcheck")(probe_port_given)

    @field_validator("secret_env")
    @classmethod
    def _secret_names(cls, value):
        bad = [name for name in value if not ENV_NAME_RE.match(name)]
        if bad:
            raise ValueError(f"not valid variable names: {', '.join(bad)}")
        return value

    @model_validator(mode="after")
    def _valid_spec(self):
        # The spec's own rules (an http/tcp probe needs a port, ...) are input errors of this call.
        try:
            self.spec()
        except ValidationError as exc:
            raise ValueError("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None
        return self

    def spec(self) -> ServiceSpec:
        return ServiceSpec.model_validate(self.model_dump(include=set(ServiceSpec.model_fields) - {"secret_env_names"}))


class SavedService(BaseModel):
    environment: str
    name: str
    created: bool
    secret_env_names: list[str]


def _service_change(params: SaveServiceInput) -> tuple[Service | None, dict, dict]:
    """(the stored service or None, what it will be — spec, strategy and options —, its secret values)."""
    env = environment_named(params.environment)
    spec = params.spec()
    service = env.services.filter(name=params.name).first()
    secrets = {k: v for k, v in ((service.secret_env if service else None) or {}).items() if k not in params.remove_secret_env}
    secrets.update(params.secret_env)
    spec.secret_env_names = sorted(secrets)
    options = params.strategy_options.model_dump(mode="json")
    return service, {"spec": spec.model_dump(mode="json"), "strategy": params.strategy, "strategy_options": options}, secrets


def _stored(service: Service | None) -> dict | None:
    return {"spec": service.spec, "strategy": service.strategy, "strategy_options": service.strategy_options} if service else None


def _changed_secrets(service: Service | None, secrets: dict) -> list[str]:
    stored = (service.secret_env if service else None) or {}
    return sorted(name for name in set(stored) | set(secrets) if stored.get(name) != secrets.get(name))


def service_lowering_scope(params: SaveServiceInput) -> str | None:
    """A change to an existing service's spec in a protected environment needs someone else's approval:
    it is what the environment's approved deploys will run."""
    scope = environment_scope(params.environment)
    if scope is None:
        return None
    try:
        service, after, secrets = _service_change(params)
    except InfrastructureError:
        return None  # the operation says so
    if service is None or (_stored(service) == after and not _changed_secrets(service, secrets)):
        return None
    return scope


def plan_save_service(ctx: Context, params: SaveServiceInput) -> dict:
    service, after, secrets = _service_change(params)
    return {"service": f"{params.environment}/{params.name}", "before": _stored(service), "after": after,
            "secret_values_changed": _changed_secrets(service, secrets)}  # fmt: skip


@operation("infrastructure.save_service", risk=Risk.RISKY, permission="core.run_write_ops", guard=True,
           approval_scope=service_lowering_scope, planner=plan_save_service, target=lambda p: f"{p.environment}/{p.name}")  # fmt: skip
def save_service(ctx: Context, params: SaveServiceInput) -> SavedService:
    """Create or update a service's spec (what the next deploy applies): image, command, env, secret env
    (encrypted; values never shown or audited), ports, replicas, healthcheck, labels, network, limits, strategy.
    Changing an existing service of a protected environment waits for another person's approval."""
    service, after, secrets = _service_change(params)
    created = service is None
    service = service or Service(environment=environment_named(params.environment), name=params.name)
    service.spec, service.strategy, service.strategy_options = after["spec"], after["strategy"], after["strategy_options"]
    service.secret_env = secrets
    service.save()
    names = after["spec"]["secret_env_names"]
    return SavedService(environment=params.environment, name=service.name, created=created, secret_env_names=names)
