"""Thin adapters over the real libraries: slack-sdk for Slack, httpx for Teams,
generic webhooks and the Twilio-shaped SMS API, Django's mail framework for SMTP.

Every call goes through the connector's circuit breaker with a timeout. A rate
limit (HTTP 429 + Retry-After) is waited out in the same attempt when the wait
is short; idempotent sends (signed webhooks carry a delivery id) are also
retried with backoff on other transient failures — never after a timeout
(SendTimedOut): that is left to the delivery's retry schedule on the worker.
What remains becomes a CommsError saying whether another attempt later is
worth it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import threading
import time
import urllib.error
from collections.abc import Callable, Iterator
from typing import TypeVar

import httpx
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from apps.core.errors import PeerUnavailable
from apps.core.outbound import Guard, OutboundRefused, display_url
from apps.core.resilience import breaker_for, call_through
from apps.core.scrub import scrub, scrub_error

from .errors import CommsError, SendTimedOut
from .models import AllowedNetwork, Connector

T = TypeVar("T")
INLINE_ATTEMPTS = 3
# Slack errors that mean "try again later" rather than "fix the request".
SLACK_TRANSIENT = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
SIGNATURE_HEADER, TIMESTAMP_HEADER, DELIVERY_HEADER = "X-Opsconsole-Signature", "X-Opsconsole-Timestamp", "X-Opsconsole-Delivery"


class PeerFailed(Exception):
    """The peer answered with a server error: counts against its circuit breaker."""


def outbound_guard() -> Guard:
    """Comms targets are public SaaS: internal addresses only when allow-listed (COMMS_SSRF_ALLOW, the setup page)."""
    return Guard(AllowedNetwork.cidrs, label="comms connectors (an admin can allow-list the network on the Comms setup page)")


def retry_after_of(value) -> float:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return 1.0


class Channel:
    """Base of the five connectors: a breaker, notes for the delivery log, bounded retries."""

    def __init__(self, connector: Connector):
        self.connector = connector
        self.breaker = breaker_for(f"comms:{connector.name}")
        self.notes: list[str] = []
        self.label = f"{connector.get_kind_display()} connector {connector.name}"

    def attempt(self, fn: Callable[[], T], *, errors: tuple, timeouts: tuple, idempotent: bool = False) -> T:
        """Call `fn` through the breaker. Short rate limits are waited out; other transient
        failures are retried with backoff only when a repeat cannot duplicate the message;
        `timeouts` (the library's timeout errors) never are: they raise SendTimedOut."""
        delay = 0.5
        for n in range(1, INLINE_ATTEMPTS + 1):
            try:
                return call_through(self.breaker, fn, errors=errors, timeouts=timeouts, describe=self.label)
            except OutboundRefused as exc:
                raise CommsError(f"Refused target of {self.label}: {exc.message}", transient=exc.transient) from None
            except (CommsError, PeerUnavailable) as exc:
                # A peer may echo the request (token, webhook URL) in its error: scrub before it is logged or stored.
                scrub_error(exc, self.connector.secrets())
                if isinstance(exc.__cause__, timeouts):
                    # Only a connect timeout proves nothing was sent.
                    unknown = not isinstance(exc.__cause__, httpx.ConnectTimeout)
                    raise SendTimedOut(exc.message, outcome_unknown=unknown) from exc.__cause__
                rate_limited = getattr(exc, "retry_after", None) is not None
                transient = getattr(exc, "transient", True) and self.breaker.current_state != "open"
                wait = exc.retry_after if rate_limited else delay
                if n == INLINE_ATTEMPTS or not transient or not (rate_limited or idempotent):
                    raise
                if wait > settings.COMMS_MAX_INLINE_WAIT_SECONDS:
                    raise
                self.notes.append(f"{exc.message} — retried after {wait:g} s")
                time.sleep(wait)
                delay *= 2
        raise AssertionError("unreachable")


class SlackChannel(Channel):
    def client(self) -> WebClient:
        base_url = self.connector.endpoint()
        # Checked, not pinned: slack-sdk opens its own urllib connections (no hook to dial a given address).
        try:
            outbound_guard().check(base_url)
        except OutboundRefused as exc:
            raise CommsError(f"Refused target of {self.label}: {exc.message}", transient=exc.transient) from None
        if not self.connector.credential():
            raise CommsError(f"{self.label} has no bot token: set it on the Comms setup page or COMMS_SLACK_TOKEN.")
        # No retry handlers of the SDK's own: rate limits are handled (and logged) by attempt().
        return WebClient(token=self.connector.credential(), base_url=base_url, timeout=int(settings.COMMS_HTTP_TIMEOUT), retry_handlers=[])

    def call(self, method: str, **kwargs) -> dict:
        client = self.client()

        def api() -> dict:
            try:
                return client.api_call(method, **kwargs).data
            except SlackApiError as exc:
                response = exc.response
                error = response.data.get("error", "") if isinstance(response.data, dict) else ""
                if response.status_code == 429:
                    wait = retry_after_of(response.headers.get("Retry-After", response.headers.get("retry-after")))
                    raise CommsError(f"Slack rate limited {method} (retry after {wait:g} s)", transient=True, retry_after=wait) from None
                if response.status_code >= 500:
                    raise PeerFailed(f"HTTP {response.status_code} from {method}") from None
                raise CommsError(
                    f"Slack refused {method}: {error or 'HTTP ' + str(response.status_code)}", transient=error in SLACK_TRANSIENT
                ) from None

        # A read timeout surfaces as TimeoutError; one while connecting as URLError (nothing was sent).
        return self.attempt(api, errors=(PeerFailed, urllib.error.URLError, ConnectionError), timeouts=(TimeoutError,))

    def post(self, channel: str, text: str, blocks: list) -> tuple[str, str]:
        data = self.call("chat.postMessage", json={"channel": channel, "text": text, "blocks": blocks, "unfurl_links": False})
        return data["channel"], data["ts"]

    def update(self, channel: str, ts: str, text: str, blocks: list) -> None:
        self.call("chat.update", json={"channel": channel, "ts": ts, "text": text, "blocks": blocks})

    def create_channel(self, name: str, private: bool) -> dict:
        return self.call("conversations.create", params={"name": name, "is_private": private})["channel"]

    def list_channels(self, types: str, exclude_archived: bool, page_size: int = 200) -> Iterator[dict]:
        """Every channel, following Slack's cursors (response_metadata.next_cursor) to the end."""
        cursor = ""
        while True:
            params = {"types": types, "exclude_archived": exclude_archived, "limit": page_size}
            if cursor:
                params["cursor"] = cursor
            data = self.call("conversations.list", http_verb="GET", params=params)
            yield from data.get("channels", [])
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor:
                return


_http: httpx.Client | None = None
_http_lock = threading.Lock()


def http() -> httpx.Client:
    """One pooled client per process (building one loads the CA bundle, ~0.1 s); it dials through the
    outbound guard, which reads the allow-list on every new connection."""
    global _http
    with _http_lock:
        if _http is None:
            _http = httpx.Client(timeout=settings.COMMS_HTTP_TIMEOUT, follow_redirects=False, transport=outbound_guard().httpx_transport())
        return _http


class HttpChannel(Channel):
    """JSON or form POSTs through httpx, connected to the address the outbound guard checked."""

    def post(self, url: str, *, idempotent: bool = False, fresh_headers: Callable[[], dict] | None = None, **request) -> httpx.Response:
        """POST to `url`; `fresh_headers()` is called for every try (signatures with a current timestamp)."""
        headers = {"User-Agent": "opsconsole-comms/1", **request.pop("headers", {})}

        def send() -> httpx.Response:
            all_headers = {**headers, **(fresh_headers() if fresh_headers else {})}
            response = http().post(url, headers=all_headers, timeout=settings.COMMS_HTTP_TIMEOUT, **request)
            if response.status_code == 429:
                wait = retry_after_of(response.headers.get("Retry-After"))
                raise CommsError(f"{display_url(url)} rate limited the console (retry after {wait:g} s)", transient=True, retry_after=wait)
            if response.status_code >= 500:
                raise PeerFailed(f"HTTP {response.status_code} from {display_url(url)}")
            if response.status_code >= 300:
                raise CommsError(f"{display_url(url)} refused the message: HTTP {response.status_code} {self.reason(response)}")
            return response

        return self.attempt(send, errors=(PeerFailed, httpx.TransportError), timeouts=(httpx.TimeoutException,), idempotent=idempotent)

    def reason(self, response: httpx.Response) -> str:
        """The peer's own explanation, scrubbed before it is cut short (a cut secret could not be found)."""
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if isinstance(body, dict):
            body = body.get("message") or body.get("error") or body
        return scrub(str(body), self.connector.secrets())[:200]


class TeamsChannel(HttpChannel):
    def send(self, card: dict) -> None:
        if not self.connector.endpoint():
            raise CommsError(f"{self.label} has no webhook URL: set it on the Comms setup page or COMMS_TEAMS_WEBHOOK_URL.")
        self.post(self.connector.endpoint(), json=card)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>": the timestamp is signed too, so a replay can't refresh it."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class WebhookChannel(HttpChannel):
    def send(self, payload: dict, delivery_id: str) -> int:
        secret = self.connector.credential()
        if not self.connector.endpoint() or not secret:
            raise CommsError(f"{self.label} needs a URL and a signing secret (or COMMS_WEBHOOK_SECRET).")
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()

        def signature() -> dict:
            timestamp = str(int(time.time()))  # fresh on every try, so a retry is not refused as a replay
            return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}

        # The delivery id lets the receiver drop a repeat: retrying cannot duplicate the message.
        headers = {"Content-Type": "application/json", DELIVERY_HEADER: delivery_id}
        response = self.post(self.connector.endpoint(), content=body, idempotent=True, headers=headers, fresh_headers=signature)
        return response.status_code


class SmsChannel(HttpChannel):
    def send(self, to: str, body: str) -> str:
        sid, sender = self.connector.options.get("account_sid") or settings.COMMS_TWILIO_ACCOUNT_SID, self.sender()
        token = self.connector.credential()
        if not (sid and token and sender):
            raise CommsError(f"{self.label} needs an account SID, an auth token and a sender number.")
        url = f"{self.connector.endpoint().rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
        response = self.post(url, data={"To": to, "From": sender, "Body": body}, auth=(sid, token))
        return response.json().get("sid", "")

    def sender(self) -> str:
        return self.connector.options.get("from") or settings.COMMS_SMS_FROM


class EmailChannel(Channel):
    def send(self, to: str, subject: str, text: str, html: str, message_id: str) -> str:
        """`message_id` is the same for every attempt of a delivery: mail stores drop a repeat of a Message-ID."""
        opts = self.connector.options
        connection = get_connection(
            "django.core.mail.backends.smtp.EmailBackend",
            host=opts.get("host") or settings.EMAIL_HOST,
            port=int(opts.get("port") or settings.EMAIL_PORT),
            username=opts.get("username", settings.EMAIL_HOST_USER) or None,
            password=self.connector.credential() or None,
            use_tls=bool(opts.get("use_tls", settings.EMAIL_USE_TLS)),
            use_ssl=bool(opts.get("use_ssl", settings.EMAIL_USE_SSL)),
            timeout=settings.EMAIL_TIMEOUT,
        )
        sender = opts.get("from") or settings.DEFAULT_FROM_EMAIL
        message = EmailMultiAlternatives(subject, text, sender, [to], connection=connection, headers={"Message-ID": message_id})
        message.attach_alternative(html, "text/html")

        def send() -> None:
            try:
                message.send()
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPAuthenticationError) as exc:
                raise CommsError(f"The SMTP server refused the message: {type(exc).__name__}") from None
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code >= 500:
                    raise CommsError(f"The SMTP server refused the message: {exc.smtp_code}") from None
                raise PeerFailed(f"SMTP {exc.smtp_code}") from None

        self.attempt(send, errors=(PeerFailed, OSError), timeouts=(TimeoutError,))
        return message_id


CHANNELS: dict[str, type[Channel]] = {
    Connector.SLACK: SlackChannel,
    Connector.TEAMS: TeamsChannel,
    Connector.EMAIL: EmailChannel,
    Connector.SMS: SmsChannel,
    Connector.WEBHOOK: WebhookChannel,
}


def channel_for(connector: Connector) -> Channel:
    if not connector.enabled:
        raise CommsError(f"Connector {connector.name} is disabled.")
    return CHANNELS[connector.kind](connector)
