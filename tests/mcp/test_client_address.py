"""The address an MCP call is audited with: behind proxies (CLIENT_IP_HEADER), the one CLIENT_IP_PROXIES from the
header's right end (what stands left of it the client may have written), and what is no IP address there is no address
(None) — as for the web (tests/accounts/test_accounts.py)."""

from types import SimpleNamespace

import pytest
from starlette.requests import Request

from apps.mcp.context import client_ip


def ctx(forwarded: str | None = None, peer: str = "10.0.0.1"):
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
    return SimpleNamespace(request=Request({"type": "http", "headers": headers, "client": (peer, 40000)}))


@pytest.mark.parametrize(
    ("forwarded", "proxies", "seen"),
    [("192.0.2.7", 1, "192.0.2.7"), (" 2001:DB8::1 ", 1, "2001:db8::1"), ("6.6.6.6, 192.0.2.7", 1, "192.0.2.7"),
     ("6.6.6.6, 2001:DB8::1 , 10.0.0.2", 2, "2001:db8::1"), ("192.0.2.7", 2, "10.0.0.1"),
     ("not-an-address", 1, None), ("1.2.3.4:5678", 1, None), ("<script>", 1, None), ("192.0.2.7, <script>", 1, None),
     ("", 1, "10.0.0.1"), (None, 1, "10.0.0.1")],
)  # fmt: skip
def test_the_forwarded_address_is_the_proxies_and_taken_only_when_it_is_one(settings, forwarded, proxies, seen):
    settings.CLIENT_IP_HEADER, settings.CLIENT_IP_PROXIES = "HTTP_X_FORWARDED_FOR", proxies
    assert client_ip(ctx(forwarded)) == seen


def test_without_a_proxy_header_the_connections_address_counts_and_a_forged_header_is_ignored(settings):
    settings.CLIENT_IP_HEADER = ""
    assert client_ip(ctx("192.0.2.7")) == "10.0.0.1"
