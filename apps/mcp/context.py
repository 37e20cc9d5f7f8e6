"""What an MCP request handler needs from the HTTP request: who calls, from where,
and a way to call the gateway off the event loop."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from django.conf import settings
from django.db import connection
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser

from apps.accounts.actors import Actor
from apps.core.gateway import Outcome, invoke
from apps.core.middleware import address_of

# Gateway calls run on these threads. Each keeps its database connection and its
# cache client from call to call, as a Celery worker thread does: run through
# asgiref, every call would start from the request's fresh context and open a new
# Redis connection (Django's caches are context-local), and reconnecting per
# tools/call would double its cost.
_threads = ThreadPoolExecutor(max_workers=settings.MCP_THREADS, thread_name_prefix="mcp")


def in_thread(func):
    """`await in_thread(f)(*args)`: run sync ORM code off the event loop."""

    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        finally:
            if connection.errors_occurred:  # a failed connection is dropped; the next call opens a fresh one
                connection.close_if_unusable_or_obsolete()

    async def call(*args, **kwargs):
        return await asyncio.get_running_loop().run_in_executor(_threads, partial(run, *args, **kwargs))

    return call


def actor_of(ctx) -> Actor:
    """The actor of an MCP request; its token was verified before the request got here (see auth.py)."""
    user = ctx.request.scope.get("user") if ctx.request is not None else None
    actor = getattr(getattr(user, "access_token", None), "actor", None) if isinstance(user, AuthenticatedUser) else None
    return actor if isinstance(actor, Actor) else Actor.for_user(None)


def client_ip(ctx) -> str | None:
    """As the web's (apps.core.middleware.client_ip): what is no IP address is None."""
    request = ctx.request
    header = settings.CLIENT_IP_HEADER  # a META name, e.g. HTTP_X_FORWARDED_FOR
    forwarded = request.headers.get(header[5:].replace("_", "-")) if header.startswith("HTTP_") else None
    return address_of(forwarded, request.client.host if request.client else None)


def request_id(ctx) -> str:
    given = ctx.request.headers.get("x-request-id", "")
    return given if given.isalnum() and len(given) <= 64 else uuid.uuid4().hex


async def call(ctx, operation: str, params: dict, *, reason: str = "", break_glass: bool = False) -> Outcome:
    """`invoke()` as the request's actor, on the "mcp" channel. Raises OpsError like invoke."""
    return await in_thread(invoke)(
        operation,
        actor_of(ctx),
        params,
        "mcp",
        client_ip=client_ip(ctx),
        request_id=request_id(ctx),
        reason=reason,
        break_glass=break_glass,
    )
