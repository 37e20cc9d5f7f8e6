"""The one outbound guard: every connector that calls a URL an admin typed
(Prometheus/Alertmanager sources, comms webhooks and SMS APIs, S3 endpoints,
Docker tcp:// engines) resolves the host here once, checks every address,
and connects to the address that was checked.

Refused always: link-local addresses (where clouds serve instance metadata)
and the known metadata addresses. Refused unless the connector's allow-list
names their network: loopback, private, and every other non-public address.
A name that does not resolve is refused too.

Pinning: the check happens when the connection is opened, on the very
addresses the socket then connects to, so a second DNS answer cannot swap in
another address (DNS rebinding) — for the first request and every redirect
alike. TLS still verifies the certificate against the host *name*.
- httpx: `Guard.httpx_transport()`, an httpcore network backend that dials the checked address.
- urllib3 (botocore; requests for docker): `Guard.pool_classes()` / `Guard.requests_adapter()`, connections that dial it.
- http.client (the dashboards' hot path): `Guard.http_connection()`, a connection whose socket dials it.
The resolver is injectable (`use_resolver`), so tests can change the DNS answer between two lookups.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore
import httpx
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from .errors import OpsError

Resolver = Callable[[str, int], list[str]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ALWAYS_REFUSED = [
    ipaddress.ip_network("169.254.0.0/16"),  # IPv4 link-local: 169.254.169.254 is the metadata service of most clouds
    ipaddress.ip_network("fe80::/10"),  # IPv6 link-local
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS metadata over IPv6
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud metadata
]


class OutboundRefused(OpsError):
    """The console will not call this URL; `transient` when a later try may succeed (a name that does not resolve yet)."""

    status_code = 403

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []
    return [info[4][0] for info in infos]


_resolver: Resolver = system_resolver


@contextlib.contextmanager
def use_resolver(resolver: Resolver) -> Iterator[None]:
    """Answer every guard's DNS lookups with `resolver` for the duration (tests, fault drills)."""
    global _resolver
    previous, _resolver = _resolver, resolver
    try:
        yield
    finally:
        _resolver = previous


def display_url(url: str) -> str:
    """A URL as pages and error messages may show it: scheme, host and port, then "…" (webhook URLs carry keys)."""
    try:
        parts = urlsplit(url or "")
        hostname, port = parts.hostname, parts.port
    except ValueError:
        return "…"
    if not hostname:
        return "…" if url else ""
    host = f"[{hostname}]" if ":" in hostname else hostname
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}/…"


def parse_networks(cidrs: Iterable[str]) -> list[Network]:
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(str(cidr).strip(), strict=False))
        except ValueError:
            continue  # validated where it is entered; a bad environment value allows nothing
    return networks


def _plain(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    address: str  # the checked address the connection goes to


class Guard:
    """One connector's policy: `allow` lists the non-public networks it may call (CIDRs or a callable giving them)."""

    def __init__(self, allow: Iterable[str] | Callable[[], Iterable[str]] = (), *, label: str = "the console"):
        self._allow = allow
        self.label = label

    def allowed(self) -> list[Network]:
        return parse_networks(self._allow() if callable(self._allow) else self._allow)

    def addresses(self, host: str, port: int) -> list[str]:
        """Resolve `host` once and return its addresses, in the resolver's order, if every one passes."""
        host = host.strip("[]")
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            addresses = list(dict.fromkeys(a.split("%", 1)[0] for a in _resolver(host, port)))
        if not addresses:
            raise OutboundRefused(f"{host} does not resolve: {self.label} only calls names it can check.", transient=True)
        allowed = self.allowed()
        for address in addresses:
            ip = _plain(address)
            if any(ip in net for net in ALWAYS_REFUSED):
                raise OutboundRefused(f"{host} resolves to {ip}, a link-local or cloud metadata address; {self.label} never calls it.")
            public = ip.is_global and not (ip.is_multicast or ip.is_reserved)
            if not public and not any(ip in net for net in allowed):
                raise OutboundRefused(
                    f"{host} resolves to {ip}, a loopback, private or otherwise internal address that is not allow-listed for {self.label}."
                )
        return addresses

    def pin(self, host: str, port: int) -> str:
        """The first checked address of `host` (see `addresses`)."""
        return self.addresses(host, port)[0]

    def check(self, url: str, *, schemes: tuple[str, ...] = ("http", "https")) -> Target:
        """Refuse `url` unless its scheme is one of `schemes` and its host passes `pin()`."""
        try:
            parts = urlsplit(url)
            hostname, port = parts.hostname, parts.port
        except ValueError:  # "http://[", a port out of range
            parts, hostname, port = None, None, None
        if parts is None or parts.scheme not in schemes or not hostname:
            shown = display_url(url) if hostname else "The URL"  # never the path or query: they may carry a key
            raise OutboundRefused(f"{shown} is not a {' or '.join(s + '://' for s in schemes)} URL with a host.")
        port = port or (443 if parts.scheme == "https" else 80)
        return Target(host=hostname, port=port, address=self.pin(hostname, port))

    # --- pinned clients ------------------------------------------------------------------

    def httpx_transport(self, *, verify: bool | ssl.SSLContext = True) -> httpx.BaseTransport:
        return _PinnedTransport(self, verify=verify)

    def http_connection(
        self, url: str, *, verify: bool | ssl.SSLContext = True, connect_timeout: float, timeout: float
    ) -> http.client.HTTPConnection:
        """A plain http.client connection to `url`'s host and port: one request at a time, no redirects,
        no pool (the caller keeps one). Its socket dials a checked address, when it opens; the Host
        header, SNI and the certificate check keep the name. The lean client for a hot path: ~0.3 ms
        of CPU per request on loopback, ~0.9 ms through httpx and httpcore (bench/dashboards.py)."""
        parts = urlsplit(url)
        if parts.scheme == "https":
            context = verify if isinstance(verify, ssl.SSLContext) else _tls_context(verify)
            connection = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout, context=context)
        else:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)

        def dial(address: tuple[str, int], _timeout=None, source_address=None) -> socket.socket:
            host, port = address

            def connect(ip: str) -> socket.socket:
                sock = socket.create_connection((ip, port), connect_timeout, source_address)
                sock.settimeout(timeout)  # then each read may wait this long
                return sock

            return _first_that_connects(self.addresses(host, port), connect, (OSError,))

        connection._create_connection = dial  # http.client's own seam: how connect() opens its socket (TLS wraps it after)
        return connection

    def requests_adapter(self):
        """A requests transport adapter whose connections dial the checked address (docker's tcp:// engines)."""
        import requests.adapters
        import urllib3

        guard = self

        class PinnedAdapter(requests.adapters.HTTPAdapter):
            def init_poolmanager(self, *args, **kwargs):
                super().init_poolmanager(*args, **kwargs)
                self.poolmanager.pool_classes_by_scheme = guard.pool_classes(urllib3.HTTPConnectionPool, urllib3.HTTPSConnectionPool)

        return PinnedAdapter()

    def pool_classes(self, http_pool: type, https_pool: type) -> dict[str, type]:
        """urllib3 pool classes (subclasses of the given ones) whose connections dial the checked address."""
        return {"http": self._pinned_pool(http_pool), "https": self._pinned_pool(https_pool)}

    def _pinned_pool(self, pool: type) -> type:
        connection = type(f"Pinned{pool.ConnectionCls.__name__}", (_PinnedConnection, pool.ConnectionCls), {"guard": self})
        return type(f"Pinned{pool.__name__}", (pool,), {"ConnectionCls": connection})


class _PinnedBackend(httpcore.NetworkBackend):
    """httpcore dials here with the URL's host; TLS (SNI, certificate check) keeps using that name."""

    def __init__(self, guard: Guard):
        self.guard = guard
        self.backend = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        def connect(address):
            return self.backend.connect_tcp(address, port, timeout=timeout, local_address=local_address, socket_options=socket_options)

        return _first_that_connects(self.guard.addresses(host, port), connect, (httpcore.ConnectError, httpcore.ConnectTimeout))

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise OutboundRefused("Unix sockets are not outbound URLs.")

    def sleep(self, seconds: float) -> None:
        self.backend.sleep(seconds)


class _PinnedTransport(httpx.HTTPTransport):
    """httpx's own transport with a connection pool that dials through the guard.
    Environment proxies are not used: a proxy would resolve the name itself."""

    def __init__(self, guard: Guard, *, verify: bool | ssl.SSLContext):
        limits = httpx.Limits()
        self._pool = httpcore.ConnectionPool(
            ssl_context=verify if isinstance(verify, ssl.SSLContext) else _tls_context(verify),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_PinnedBackend(guard),
        )


class _PinnedConnection:
    """Mixed into a urllib3 connection class: the socket goes to the checked address, while the
    connection keeps its host name for the Host header, SNI and certificate verification."""

    guard: Guard

    def _new_conn(self):
        name = self._dns_host

        def connect(address):
            self._dns_host = address
            return super(_PinnedConnection, self)._new_conn()

        try:
            return _first_that_connects(self.guard.addresses(name, self.port), connect, (NewConnectionError, ConnectTimeoutError))
        finally:
            self._dns_host = name


@functools.cache
def _tls_context(verify: bool) -> ssl.SSLContext:
    """The trust of both pinned clients (certifi's roots, not the environment's), built once per flag: loading it costs ms."""
    return httpx.create_ssl_context(verify=verify, trust_env=False)


def _first_that_connects(addresses: list[str], connect: Callable, errors: tuple):
    """Each checked address in turn, as a resolving client would (a name may have an unreachable IPv6 first)."""
    for address in addresses[:-1]:
        try:
            return connect(address)
        except errors:
            continue
    return connect(addresses[-1])
