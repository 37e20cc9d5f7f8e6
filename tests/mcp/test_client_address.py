"""The address an MCP call is audited with: behind a proxy (CLIENT_IP_HEADER), the first forwarded one, and
what is no IP address there is no address (None) — as for the web (tests/accounts/test_accounts.py)."""

from types import SimpleNamespace

import pytest
from starlette.requests import Request

from apps.mcp.context import client_ip


def ctx(forwarded: str | None = None, peer: str = "10.0.0.1"):
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
    return SimpleNamespace(request=Request({"type": "http", "headers": headers, "client": (peer, 40000)}))


@pytest.mark.parametrize(
    ("forwarded", "seen"),
    [(" 2001:DB8::1 , 10.0.0.1", "2001:db8::1"), ("192.0.2.7", "192.0.2.7"), ("not-an-address", None),
     ("1.2.3.4:5678", None), ("<script>", None), ("", "10.0.0.1"), (None, "10.0.0.1")],
)  # fmt: skip
def test_the_forwarded_address_is_taken_only_when_it_is_one(settings, forwarded, seen):
    settings.CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    assert client_ip(ctx(forwarded)) == seen


def test_without_a_proxy_header_the_connections_address_counts_and_a_forged_header_is_ignored(settings):
    settings.CLIENT_IP_HEADER = ""
    assert client_ip(ctx("192.0.2.7")) == "10.0.0.1"
