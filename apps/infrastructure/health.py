"""Health of replicas, probed by the console itself (HTTP or TCP to the port each
replica publishes on the engine's host). Engines that define container
healthchecks but do not run them on a timer (podman without systemd) are
covered the same way as dockerd."""

from __future__ import annotations

import http.client
import socket

from .client import ContainerInfo
from .specs import HealthCheck


def probe(check: HealthCheck, host: str, container: ContainerInfo, port: int | None) -> tuple[bool, str]:
    """One probe, on a new connection: (healthy, what was seen)."""
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
    connection = http.client.HTTPConnection(host, host_port, timeout=check.timeout_seconds)
    try:
        connection.request("GET", check.path, headers={"User-Agent": "opsconsole-healthcheck"})
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return False, f"GET {check.path}: {type(exc).__name__} {exc}".strip()
    finally:
        connection.close()
    if status != check.expect_status:
        return False, f"GET {check.path} answered {status}, expected {check.expect_status}"
    return True, f"GET {check.path} {status}"
