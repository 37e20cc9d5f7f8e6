"""Refuse source URLs that point at link-local or cloud metadata addresses: a
console that fetches URLs admins type must not become a way to read instance
credentials (169.254.169.254, fd00:ec2::254)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from .errors import MonitoringError

REFUSED_NETWORKS = [
    ipaddress.ip_network("169.254.0.0/16"),  # IPv4 link-local, where clouds put metadata
    ipaddress.ip_network("fe80::/10"),  # IPv6 link-local
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS metadata over IPv6
]


def _refused(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in net for net in REFUSED_NETWORKS)


def check_url(url: str, *, resolve: bool = True) -> None:
    """Raise MonitoringError unless `url` is http(s) to an address we may call.

    Host names are resolved and every address they resolve to is checked.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MonitoringError(f"{url!r} is not an http:// or https:// URL with a host.")
    host = parts.hostname
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        addresses = []
        if resolve:
            try:
                infos = socket.getaddrinfo(host, parts.port or 80, proto=socket.IPPROTO_TCP)
            except OSError:
                infos = []  # an unresolvable name fails later with a clear connection error
            addresses = [info[4][0] for info in infos]
    for address in addresses:
        if _refused(address):
            raise MonitoringError(
                f"{host} resolves to {address}, a link-local or metadata address; the console refuses to call it.", status_code=403
            )
