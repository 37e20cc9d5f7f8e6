"""An MCP client of the console's real ASGI server: the SDK's own client over
Streamable HTTP, authenticated with an API token."""

from __future__ import annotations

import contextlib

import httpx2
import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


@contextlib.asynccontextmanager
async def mcp_client(url: str, raw_token: str, mode: str = "auto", **headers: str):
    """`mode="legacy"` speaks the initialize handshake (2025-11-25); "auto" the newest revision."""
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {raw_token}", **headers})
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        yield client


@pytest.fixture(autouse=True)
async def close_thread_connections():
    """The async tests reach the ORM through asgiref's thread; its connection would
    outlive the test and keep PostgreSQL from dropping the test database."""
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def mcp_url(console_server) -> str:
    return console_server + "/mcp"


def post_raw(url: str, body: dict, **headers: str) -> httpx2.Response:
    """One JSON-RPC POST without the SDK, to see the HTTP layer's answer."""
    base = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    with httpx2.Client(timeout=10) as http:
        return http.post(url, json=body, headers={**base, **headers})
