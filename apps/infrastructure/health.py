"""Health of replicas, probed by the console itself (HTTP or TCP to the port each
replica publishes on the engine's host). Engines that define container
healthchecks but do not run them on a timer (podman without systemd) are
covered the same way as dockerd."""

from __future__ import annotations

import socket

import httpx

from .client import ContainerInfo
from .specs import HealthCheck

# One client for every probe: building a client (its TLS context) costs far more than a probe.
_http = httpx.Client(follow_redirects=False)


def probe(check: HealthCheck, host: str, container: ContainerInfo, port: int | None) -> tuple[bool, str]:
    """One probe: (healthy, what was seen)."""
    if not container.running:
        return False, f"container is {container.status}"
    if check.kind == "running" or port is None:
        return True, "running"
    host_port = container.ports.get(port)
    if host_port is None:
        return False, f"port {port} is not published"
    if check.kind == "tcp":
        try:
            with socket.create_connection((host, host_port), timeout=check.timeout_seconds):
                return True, f"tcp {port} open"
        except OSError as exc:
            return False, f"tcp {port}: {exc.strerror or exc}"
    try:
        response = _http.get(f"http://{host}:{host_port}{check.path}", timeout=check.timeout_seconds)
    except httpx.HTTPError as exc:
        return False, f"GET {check.path}: {type(exc).__name__} {exc}".strip()
    if response.status_code != check.expect_status:
        return False, f"GET {check.path} answered {response.status_code}, expected {check.expect_status}"
    return True, f"GET {check.path} {response.status_code}"
