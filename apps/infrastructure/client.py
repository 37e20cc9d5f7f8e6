"""The Docker Engine API adapter (docker SDK): one `Engine` per environment.

Every call goes through the environment's circuit breaker (`docker:<name>`).
An engine that does not answer (connection refused, timeout) counts against
the breaker and becomes PeerUnavailable; an engine that answers with an error
becomes InfrastructureError with the engine's own explanation.
"""

from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import docker
import docker.errors
import docker.tls
import requests.exceptions
from django.conf import settings

from apps.core.outbound import Guard
from apps.core.resilience import breaker_for, call_through
from apps.core.scrub import scrubbed

from .errors import InfrastructureError

T = TypeVar("T")
LABEL = "opsconsole."
# Engine API version the console speaks: dockerd 20.10+ and podman 4+ serve it. Fixed rather than
# negotiated, so building a client never touches the network outside the breaker.
API_VERSION = "1.41"


def outbound_guard() -> Guard:
    """Docker engines live inside: INFRA_OUTBOUND_ALLOW lists the internal networks tcp:// engines may use."""
    return Guard(settings.INFRA_OUTBOUND_ALLOW, label="Docker engines")


class EngineUnreachable(Exception):
    """The SDK could not reach the engine at all (raised before any HTTP exchange)."""


PEER_ERRORS = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, EngineUnreachable)


@dataclass(eq=False)
class ContainerInfo:
    """What the console needs to know of one container, read from the engine.
    Two readings of the same container are equal, whatever changed in between."""

    id: str
    name: str
    image: str
    state: str  # created, running, exited, ...
    status: str
    labels: dict[str, str]
    ips: dict[str, str] = field(default_factory=dict)  # network -> IP
    ports: dict[int, int] = field(default_factory=dict)  # container port -> host port
    exit_code: int | None = None
    started_at: str = ""

    @classmethod
    def from_attrs(cls, attrs: dict) -> ContainerInfo:
        state = attrs.get("State") or {}
        settings = attrs.get("NetworkSettings") or {}
        ports = {}
        for key, bindings in (settings.get("Ports") or {}).items():
            if bindings:
                ports[int(key.split("/")[0])] = int(bindings[0]["HostPort"])
        config = attrs.get("Config") or {}
        return cls(
            id=attrs["Id"],
            name=attrs.get("Name", "").lstrip("/"),
            image=config.get("Image", ""),
            state=state.get("Status", "unknown"),
            status=state.get("Status", "unknown") + (f" (exit {state.get('ExitCode')})" if state.get("Status") == "exited" else ""),
            labels=config.get("Labels") or {},
            ips={name: net.get("IPAddress", "") for name, net in (settings.get("Networks") or {}).items() if net.get("IPAddress")},
            ports=ports,
            exit_code=state.get("ExitCode"),
            started_at=state.get("StartedAt", ""),
        )

    def __eq__(self, other) -> bool:
        return isinstance(other, ContainerInfo) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def label(self, key: str, default: str = "") -> str:
        return self.labels.get(LABEL + key, default)

    @property
    def running(self) -> bool:
        return self.state == "running"


class Engine:
    """One environment's engine. Use as a context manager: TLS material lives in a
    private temporary directory only while the engine is open."""

    def __init__(self, environment):
        self.environment = environment
        self.breaker = breaker_for(f"docker:{environment.name}")
        self._client: docker.DockerClient | None = None
        self._tls_dir: str | None = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._tls_dir:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
            self._tls_dir = None

    # --- plumbing ---------------------------------------------------------------------

    def _tls(self) -> docker.tls.TLSConfig | bool:
        env = self.environment
        if not (env.tls_client_cert or env.tls_ca_cert):
            return False
        self._tls_dir = tempfile.mkdtemp(prefix="opsconsole-tls-")
        paths = {}
        for name, pem in (("ca.pem", env.tls_ca_cert), ("cert.pem", env.tls_client_cert), ("key.pem", env.tls_client_key)):
            if pem:
                path = Path(self._tls_dir) / name
                path.touch(mode=0o600)
                path.write_text(pem)
                paths[name] = str(path)
        client_cert = (paths["cert.pem"], paths["key.pem"]) if "cert.pem" in paths and "key.pem" in paths else None
        return docker.tls.TLSConfig(client_cert=client_cert, ca_cert=paths.get("ca.pem"), verify=paths.get("ca.pem") or True)

    def _docker(self) -> docker.DockerClient:
        if self._client is None:
            url = self.environment.engine_url
            if url.startswith("tcp://") and (self.environment.tls_client_cert or self.environment.tls_ca_cert):
                url = "https://" + url.removeprefix("tcp://")
            try:
                self._client = docker.DockerClient(
                    base_url=url, tls=self._tls(), timeout=self.environment.timeout_seconds, version=API_VERSION
                )
            except docker.errors.DockerException as exc:
                raise InfrastructureError(f"The engine settings of {self.environment} are unusable: {exc}") from exc
            # requests lets REQUESTS_CA_BUNDLE override a session's own CA: the engine's CA must win.
            self._client.api.trust_env = False
            if self._client.api.base_url.startswith(("http://", "https://")):
                # A network engine: every connection dials an address the outbound guard just checked.
                adapter = outbound_guard().requests_adapter()
                self._client.api.mount("http://", adapter)
                self._client.api.mount("https://", adapter)
        return self._client

    def call(self, what: str, fn: Callable[[docker.DockerClient], T], *, retry: bool = False) -> T:
        """Run `fn(client)` through the breaker, mapping the SDK's errors."""

        def attempt() -> T:
            try:
                return fn(self._docker())
            except docker.errors.NotFound as exc:
                raise InfrastructureError(f"{what}: not found on the engine of {self.environment} ({_explain(exc)}).") from exc
            except docker.errors.APIError as exc:
                raise InfrastructureError(f"{what}: the engine of {self.environment} refused: {_explain(exc)}") from exc
            except docker.errors.DockerException as exc:
                raise EngineUnreachable(str(exc)) from exc

        with scrubbed(self.environment.tls_client_key):
            return call_through(
                self.breaker,
                attempt,
                errors=PEER_ERRORS,
                timeouts=(requests.exceptions.Timeout,),
                retry=retry,
                describe=f"The Docker engine of {self.environment}",
            )

    # --- reads ------------------------------------------------------------------------

    def version(self) -> dict:
        return self.call("version", lambda c: c.version(), retry=True)

    def containers(self, **labels: str) -> list[ContainerInfo]:
        filters = {"label": [f"{LABEL}{k}={v}" for k, v in labels.items()]}
        return self.call(
            "list containers",
            lambda c: [ContainerInfo.from_attrs(x.attrs) for x in c.containers.list(all=True, filters=filters)],
            retry=True,
        )

    def inspect(self, name: str) -> ContainerInfo:
        return self.call(f"inspect {name}", lambda c: ContainerInfo.from_attrs(c.api.inspect_container(name)), retry=True)

    def find(self, name: str) -> ContainerInfo | None:
        try:
            return self.inspect(name)
        except InfrastructureError as exc:
            if isinstance(exc.__cause__, docker.errors.NotFound):
                return None
            raise

    def logs(self, name: str, *, tail: int, since: int | None = None) -> str:
        def read(c):
            return c.api.logs(name, stdout=True, stderr=True, timestamps=True, tail=tail, since=since).decode(errors="replace")

        return self.call(f"logs of {name}", read, retry=True)

    def follow_logs(self, name: str, *, since: int | None = None):
        """A closable stream of log chunks (bytes) that follows new output."""
        return self.call(
            f"follow logs of {name}",
            lambda c: c.api.logs(name, stdout=True, stderr=True, timestamps=True, stream=True, follow=True, since=since),
        )

    def read_file(self, name: str, path: str) -> bytes | None:
        def read(c):
            try:
                stream, _stat = c.api.get_archive(name, path)
            except docker.errors.NotFound:
                return None
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                member = tar.extractfile(tar.getmembers()[0])
                return member.read() if member else None

        return self.call(f"read {path} in {name}", read, retry=True)

    def image(self, reference: str) -> dict:
        """The engine's inspect of an image (name:tag, name@digest or id)."""
        return self.call(f"inspect image {reference}", lambda c: c.api.inspect_image(reference), retry=True)

    def save_image(self, image: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The image as a `docker save` tar (GET /images/{name}/get), chunk by chunk as the engine
        sends it: never held whole. Read-only on the engine (no container is created)."""

        def open_archive(c):
            # Not api.get_image(): its stream helper switches the socket's read timeout off, so a
            # stalled engine would hang the scan for ever; requests keeps the client's timeout here.
            response = c.api._get(c.api._url("/images/{0}/get", image), stream=True)
            c.api._raise_for_status(response)
            return response

        # No retry: podman prepares the whole archive before its first byte; a timeout is not worth doubling.
        response = self.call(f"export {image}", open_archive)
        try:
            yield from response.iter_content(chunk_size)
        except (*PEER_ERRORS, requests.exceptions.ChunkedEncodingError) as exc:
            raise InfrastructureError(f"The engine of {self.environment} stopped answering during the export of {image}: {exc}") from exc
        finally:
            response.close()

    # --- writes -----------------------------------------------------------------------

    def ensure_network(self, name: str, labels: dict[str, str]) -> None:
        def ensure(c):
            if not c.networks.list(names=[name]):
                c.networks.create(name, driver="bridge", labels=labels)

        self.call(f"network {name}", ensure)

    def run(self, name: str, *, image: str, command: list[str] | None, env: dict[str, str], labels: dict[str, str],
            network: str, ports: dict[int, tuple[str, int | None]], memory: str | None = None, cpus: float | None = None,
            pids: int | None = None) -> ContainerInfo:  # fmt: skip
        """Create and start a container; labels are set at creation, so a container is never half-labelled."""

        def run(c):
            container = c.containers.run(
                image, command, name=name, detach=True, init=True, environment=env, labels=labels, network=network,
                ports={f"{p}/tcp": bind for p, bind in ports.items()}, mem_limit=memory,
                nano_cpus=int(cpus * 1e9) if cpus else None, pids_limit=pids,
            )  # fmt: skip
            return ContainerInfo.from_attrs(c.api.inspect_container(container.id))

        return self.call(f"start {name}", run)

    def stop(self, name: str, timeout: int = 10) -> None:
        self.call(f"stop {name}", lambda c: c.api.stop(name, timeout=timeout))

    def start(self, name: str) -> None:
        self.call(f"start {name}", lambda c: c.api.start(name))

    def remove(self, name: str, timeout: int = 10) -> None:
        """Stop (politely, then forcibly) and remove; a container already gone is fine."""

        def remove(c):
            try:
                if c.api.inspect_container(name)["State"].get("Running"):
                    c.api.stop(name, timeout=timeout)
                c.api.remove_container(name, force=True)
            except docker.errors.NotFound:
                pass

        self.call(f"remove {name}", remove)

    def write_file(self, name: str, path: str, data: bytes) -> None:
        directory, _, filename = path.rpartition("/")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo(filename)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        self.call(f"write {path} in {name}", lambda c: c.api.put_archive(name, directory or "/", buffer.getvalue()))

    def build(self, *, tag: str, labels: dict[str, str], fileobj=None, path: str | None = None) -> Iterator[dict]:
        """Build an image, yielding the engine's progress messages as they come."""
        kwargs = {"fileobj": fileobj, "custom_context": True} if fileobj is not None else {"path": path}
        stream = self.call(f"build {tag}", lambda c: c.api.build(tag=tag, labels=labels, rm=True, decode=True, **kwargs))
        try:
            yield from stream
        except PEER_ERRORS as exc:
            raise InfrastructureError(f"The engine of {self.environment} stopped answering during the build of {tag}: {exc}") from exc

    def prune(self, **labels: str) -> dict:
        filters = {"label": [f"{LABEL}{k}={v}" for k, v in labels.items()]}

        def prune(c):
            containers = c.containers.prune(filters=filters)
            images = c.images.prune(filters={"dangling": True, **filters})
            return {
                "containers": containers.get("ContainersDeleted") or [],
                "images": [i.get("Deleted") or i.get("Untagged") for i in images.get("ImagesDeleted") or []],
                "space_reclaimed": (containers.get("SpaceReclaimed") or 0) + (images.get("SpaceReclaimed") or 0),
            }

        return self.call("prune", prune)


def _explain(exc: docker.errors.APIError) -> str:
    return str(exc.explanation or exc).strip()
