"""Sending a batch of audit events to a sink: syslog over TCP (optionally TLS) or
an HTTPS POST of JSON lines. Both connect only to an address the console's one
outbound guard checked (apps/core/outbound.py; internal networks only when
AUDIT_SINK_OUTBOUND_ALLOW names them), and both raise SinkError on anything but a
confirmed delivery, so the cursor stays put."""

from __future__ import annotations

import json
import socket
import ssl
from urllib.parse import urlsplit

import httpx
from django.conf import settings

from apps.core.errors import OpsError
from apps.core.outbound import Guard, display_url

from .formats import render, syslog_frame


class SinkError(Exception):
    """The sink did not take the batch; it is sent again later."""


def split_host_port(address: str) -> tuple[str, int]:
    """host:port of a syslog sink ([v6]:port too)."""
    parts = urlsplit("//" + address.strip())
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or not port or parts.path or parts.query:
        raise ValueError("A syslog address is host:port, e.g. siem.example.com:6514.")
    return parts.hostname, port


def guard() -> Guard:
    """SIEMs usually live inside: like other connectors, internal networks only as AUDIT_SINK_OUTBOUND_ALLOW allows."""
    return Guard(lambda: settings.AUDIT_SINK_OUTBOUND_ALLOW, label="audit sinks (AUDIT_SINK_OUTBOUND_ALLOW)")


def check_destination(kind: str, address: str) -> None:
    """Refuse a destination the guard refuses, as a SinkError (the sink's form shows it on the address)."""
    try:
        if kind == "https":
            guard().check(address, schemes=("https",))
        else:
            guard().pin(*split_host_port(address))
    except OpsError as exc:
        raise SinkError(exc.message) from None


def _tls_context(sink) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=sink.ca_pem or None)


def send(sink, events) -> None:
    lines = [render(sink.format, e) for e in events]
    if sink.kind == sink.SYSLOG:
        _send_syslog(sink, events, lines)
    else:
        _send_https(sink, lines)


def _send_syslog(sink, events, lines: list[str]) -> None:
    host, port = split_host_port(sink.address)
    payload = b"".join(syslog_frame(e, line) for e, line in zip(events, lines, strict=True))
    try:
        address = guard().pin(host, port)  # resolved once; the socket goes to the checked address
    except OpsError as exc:
        raise SinkError(exc.message) from None
    try:
        with socket.create_connection((address, port), timeout=settings.AUDIT_STREAM_TIMEOUT) as raw:
            if not sink.tls:
                raw.sendall(payload)
                _await_close(raw)
                return
            with _tls_context(sink).wrap_socket(raw, server_hostname=host) as conn:
                conn.sendall(payload)
                try:
                    plain = conn.unwrap()  # our close_notify
                except ssl.SSLEOFError:
                    return  # rsyslog answers close_notify by closing: it had read everything before it
                _await_close(plain)
    except (OSError, ssl.SSLError) as exc:
        raise SinkError(f"syslog {host}:{port}: {exc.strerror or exc}") from None


def _await_close(conn: socket.socket) -> None:
    """TCP syslog has no acknowledgement: closing our side and waiting for the server to close
    its own shows it read the whole stream, rather than trusting our send buffer."""
    conn.shutdown(socket.SHUT_WR)
    while conn.recv(4096):
        pass


def _send_https(sink, lines: list[str]) -> None:
    headers = {"Content-Type": "application/x-ndjson", "User-Agent": "opsconsole-audit/1"}
    if sink.token:
        headers["Authorization"] = f"Bearer {sink.token}"
    # JSON lines: an OCSF object per line, or a CEF line as a JSON string.
    body = "".join((line if sink.format == "ocsf" else json.dumps(line, ensure_ascii=False)) + "\n" for line in lines).encode()
    shown = display_url(sink.address)
    try:
        guard().check(sink.address, schemes=("https",))
        # The guard's transport dials the address it checked; TLS verifies the host name (ca_pem or the system CAs).
        transport = guard().httpx_transport(verify=_tls_context(sink))
        with httpx.Client(transport=transport, timeout=settings.AUDIT_STREAM_TIMEOUT, follow_redirects=False) as client:
            response = client.post(sink.address, content=body, headers=headers)
    except OpsError as exc:
        raise SinkError(exc.message) from None
    except httpx.HTTPError as exc:
        raise SinkError(f"{shown}: {type(exc).__name__}: {exc}") from None
    if response.status_code >= 300:
        raise SinkError(f"{shown} answered HTTP {response.status_code}")
