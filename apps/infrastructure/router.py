"""Traffic switching on a plain Docker engine: one small router container per service.

The router publishes the service's stable ports and forwards each TCP
connection to the next replica (round-robin) of an upstream file
(`/opsconsole-upstreams`: a count, then one IP per line). The console rewrites
that file through the engine API (`put_archive`) — no exec, no extra port —
so switching traffic is atomic per connection: connections already open
finish on the replica they started on, new ones go to the new set. Round-robin
over replicas makes a canary's share of traffic its share of replicas.

The router image needs busybox `sh` and `nc` (`-ll -e` keeps nc listening and
runs a handler per connection); the official busybox image has both.
"""

from __future__ import annotations

from .client import LABEL, ContainerInfo, Engine

UPSTREAMS = "/opsconsole-upstreams"

# Handler per connection: read the upstream file (retrying while it is being
# rewritten or empty, for up to ~2 s), pick the next upstream round-robin
# (a shared counter; a lost update under concurrency only skews one pick), then
# hand the connection to nc. Only shell builtins run before nc, so no fork is spent.
_HANDLER = (
    "i=0; while :; do set -- $(cat " + UPSTREAMS + " 2>/dev/null); n=${1:-0}; shift 2>/dev/null; "
    'if [ "$n" -gt 0 ] 2>/dev/null && [ $# -eq "$n" ]; then '
    "c=0; read -r c < " + UPSTREAMS + '-rr 2>/dev/null; c=$(( (${c:-0} + 1) % 1000000 )); echo "$c" > ' + UPSTREAMS + "-rr; "
    'shift $((c % n)); exec nc "$1" "$PORT"; fi; '
    "i=$((i+1)); [ $i -ge 40 ] && exit 1; sleep 0.05; done"
)
# A service without ports still gets a router, idle: its upstream file is the engine-side
# record of which replicas are current.
_SCRIPT = (
    '[ $# -eq 0 ] && exec sleep 2147483647; for PORT in "$@"; do export PORT; nc -ll -p "$PORT" -e sh -c \'' + _HANDLER + "' & done; wait"
)


def router_name(service) -> str:
    return f"{service.environment.name}-{service.name}-router"


def network_name(service, spec) -> str:
    return spec.network or f"{service.environment.name}-{service.name}"


def service_labels(service, role: str) -> dict[str, str]:
    return {
        LABEL + "managed": "true",
        LABEL + "environment": service.environment.name,
        LABEL + "service": service.name,
        LABEL + "role": role,
    }


def ensure_router(engine: Engine, service, spec, log) -> ContainerInfo:
    """The service's router, created (or recreated when its ports changed) and running."""
    env = service.environment
    name = router_name(service)
    wanted = {p.container: p.host for p in spec.ports}
    current = engine.find(name)
    if current is not None:
        published_ok = set(current.ports) == set(wanted) and all(h is None or current.ports.get(c) == h for c, h in wanted.items())
        if published_ok and current.running:
            return current
        if published_ok:
            engine.start(name)
            return engine.inspect(name)
        log(f"router {name}: published ports changed, recreating it (connections are cut)", "warning")
        upstreams = read_upstreams(engine, current)
        engine.remove(name, timeout=2)
    else:
        upstreams = []
    log(f"router {name}: starting on {env.publish_address} for port(s) {', '.join(map(str, wanted))}")
    router = engine.run(
        name,
        image=env.router_image,
        command=["sh", "-c", _SCRIPT, "router", *map(str, wanted)],
        env={},
        labels=service_labels(service, "router"),
        network=network_name(service, spec),
        ports={c: (env.publish_address, h) for c, h in wanted.items()},
        memory="64m",
        pids=256,
    )
    if upstreams:
        write_upstreams(engine, router, upstreams)
    return router


def read_upstreams(engine: Engine, router: ContainerInfo) -> list[str]:
    data = engine.read_file(router.name, UPSTREAMS)
    if not data:
        return []
    fields = data.decode().split()
    try:
        count = int(fields[0])
    except (IndexError, ValueError):
        return []
    return fields[1:] if len(fields) - 1 == count else []


def write_upstreams(engine: Engine, router: ContainerInfo, ips: list[str]) -> None:
    engine.write_file(router.name, UPSTREAMS, (f"{len(ips)}\n" + "".join(f"{ip}\n" for ip in ips)).encode())


def endpoints(service, router: ContainerInfo | None) -> list[str]:
    if router is None:
        return []
    host = service.environment.publish_address
    host = service.environment.host_address if host in ("0.0.0.0", "::") else host  # noqa: S104 - compares, binds nothing
    return [f"{host}:{port}" for _c, port in sorted(router.ports.items())]
