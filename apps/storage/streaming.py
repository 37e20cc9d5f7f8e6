"""The browser upload's bytes, through a raw ASGI endpoint in front of Django.

Django's ASGI handler reads a whole request body into a temporary file before
any view runs; an upload must instead flow to S3 as it arrives. So the upload
page first asks a Django view (session, CSRF, permission, validation) for a
one-use ticket, then PUTs the file to /storage/upload/stream/<ticket>/, where
this endpoint hands the body, chunk by chunk, to storage.upload through the
gateway. While a chunk waits to be consumed uvicorn stops reading the socket,
so the process holds no more than the parts in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import uuid

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.cache import cache
from django.db import close_old_connections

from apps.accounts.actors import Actor
from apps.core.errors import OpsError, PermissionDenied
from apps.core.gateway import invoke

from .services.uploads import UploadInput
from .transfer import SourceInterrupted

TICKET_SALT = "storage.upload.ticket"
TICKET_SECONDS = 600
BLOCK = 1024 * 1024


def issue_ticket(user, params: UploadInput) -> str:
    """A signed, one-use permission to stream one upload with these params."""
    payload = {"u": user.pk, "p": params.model_dump(mode="json"), "n": secrets.token_urlsafe(16)}
    return signing.dumps(payload, salt=TICKET_SALT, compress=True)


def stream_url(ticket: str) -> str:
    return f"/storage/upload/stream/{ticket}/"  # served by upload_stream (opsconsole.routing)


def redeem_ticket(ticket: str) -> tuple[Actor, UploadInput]:
    try:
        payload = signing.loads(ticket, salt=TICKET_SALT, max_age=TICKET_SECONDS)
    except signing.BadSignature:
        raise PermissionDenied("This upload link is invalid or has expired: start the upload again from the upload page.") from None
    if not cache.add(f"storage:upload-ticket:{payload['n']}", 1, TICKET_SECONDS):
        raise PermissionDenied("This upload link was already used: start the upload again from the upload page.")
    user = get_user_model().objects.filter(pk=payload["u"], is_active=True).first()
    return Actor.for_user(user), UploadInput.model_validate(payload["p"])


class RequestBody:
    """The request body as an iterator of chunks, pulled from the event loop by the upload's thread."""

    def __init__(self, receive, loop: asyncio.AbstractEventLoop, expected: int | None):
        self.receive, self.loop, self.expected = receive, loop, expected
        self.received = 0
        self.finished = False  # the whole body was read, or the client went away

    async def _block(self) -> tuple[bytes, str]:
        """Up to BLOCK bytes of body (fewer thread hand-overs than uvicorn's small messages), and the state after them."""
        parts, size = [], 0
        while size < BLOCK:
            message = await asyncio.wait_for(self.receive(), settings.STORAGE_UPLOAD_IDLE_SECONDS)
            if message["type"] == "http.disconnect":
                return b"".join(parts), "gone"
            chunk = message.get("body", b"")
            parts.append(chunk)
            size += len(chunk)
            if not message.get("more_body", False):
                return b"".join(parts), "done"
        return b"".join(parts), "more"

    def __iter__(self):
        state = "more"
        while state == "more":
            try:
                block, state = asyncio.run_coroutine_threadsafe(self._block(), self.loop).result()
            except TimeoutError:
                raise SourceInterrupted(
                    f"No bytes arrived for {settings.STORAGE_UPLOAD_IDLE_SECONDS:.0f} s after {self.received} bytes."
                ) from None
            self.received += len(block)
            self.finished = state != "more"
            if state == "gone":
                of = f" of {self.expected}" if self.expected is not None else ""
                raise SourceInterrupted(f"The browser closed the connection after {self.received}{of} bytes.")
            if block:
                yield block

    async def drain(self) -> None:
        """Read and drop what the client still sends, so that it gets to read the answer."""
        while not self.finished:
            message = await asyncio.wait_for(self.receive(), settings.STORAGE_UPLOAD_IDLE_SECONDS)
            self.finished = message["type"] == "http.disconnect" or not message.get("more_body", False)


def _upload(ticket: str, body: RequestBody, client_ip: str | None, request_id: str) -> tuple[int, dict]:
    try:
        actor, params = redeem_ticket(ticket)
        outcome = invoke("storage.upload", actor, params.streaming(body), "web", client_ip=client_ip, request_id=request_id)
        return 200, outcome.result.model_dump(mode="json")
    except OpsError as exc:
        return exc.status_code, {"error": exc.message}
    finally:
        close_old_connections()


async def upload_stream(scope, receive, send) -> None:
    """ASGI endpoint: PUT /storage/upload/stream/<ticket>/ with the file's bytes as the body."""
    headers = dict(scope.get("headers", []))
    if scope["method"] != "PUT":
        status, payload = 405, {"error": "PUT the file's bytes here."}
    else:
        length = headers.get(b"content-length")
        body = RequestBody(receive, asyncio.get_running_loop(), int(length) if length and length.isdigit() else None)
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        client_ip = (scope.get("client") or [None])[0]
        async with ThreadSensitiveContext():
            status, payload = await sync_to_async(_upload)(scope["url_route"]["kwargs"]["ticket"], body, client_ip, request_id)
        if status != 200:
            # A browser only reads the answer once it has sent everything: without this it would see a dropped connection.
            with contextlib.suppress(TimeoutError):
                await body.drain()
    response_headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": json.dumps(payload).encode()})
