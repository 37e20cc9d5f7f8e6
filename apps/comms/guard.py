"""SSRF guard: the console refuses to call URLs that resolve to loopback,
link-local, private or otherwise non-public addresses unless an admin
allow-listed the network (setup page, or COMMS_SSRF_ALLOW).

Every address the name resolves to must pass, and the caller connects to the
address that was checked (`Resolved.pinned_url`), so a second DNS answer
cannot swap in an internal one (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

from .errors import CommsError


@dataclass(frozen=True)
class Resolved:
    url: str
    host: str
    address: str
    pinned_url: str  # the URL with the checked address in place of the host name


def allowed_networks() -> list[ipaddress._BaseNetwork]:
    from .models import AllowedNetwork

    cidrs = list(settings.COMMS_SSRF_ALLOW) + list(AllowedNetwork.objects.values_list("cidr", flat=True))
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            continue  # validated on save; a bad environment value allows nothing
    return networks


def is_public(address: ipaddress._BaseAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not (address.is_multicast or address.is_reserved)


def check_url(url: str) -> Resolved:
    """Resolve `url`'s host and refuse it unless every address is public or allow-listed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CommsError(f"Refused target {safe_url(url)}: only http(s) URLs with a host name are allowed.")
    host = parts.hostname
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise CommsError(f"Target host {host} does not resolve ({exc.strerror}).", transient=True) from None
    addresses = sorted({ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos}, key=str)
    allowed = allowed_networks()
    for address in addresses:
        if not is_public(address) and not any(address in net for net in allowed):
            raise CommsError(
                f"Refused target {safe_url(url)}: {host} resolves to {address}, a loopback, private or link-local address. "
                "An admin can allow-list that network on the Comms setup page if it is really wanted."
            )
    address = str(addresses[0])
    netloc_host = f"[{address}]" if ":" in address else address
    netloc = netloc_host + (f":{parts.port}" if parts.port else "")
    return Resolved(url=url, host=host, address=address, pinned_url=urlunsplit(parts._replace(netloc=netloc)))


def safe_url(url: str) -> str:
    """A URL as error messages may show it: no credentials, path or query (webhook URLs embed keys)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}{':' + str(parts.port) if parts.port else ''}/…"
