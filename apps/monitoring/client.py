"""Connectors to one source's Prometheus HTTP API and Alertmanager API v2:
http.client through the outbound guard with timeouts, the core circuit breaker (one per peer), retries for
reads, and every error mapped to MonitoringError or PeerUnavailable."""

from __future__ import annotations

import base64
import http.client
import json as _json
import select
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode, urlsplit

from apps.core.metrics import record_breaker_states
from apps.core.resilience import breaker_for, call_through
from apps.core.scrub import scrub, scrubbed

from .errors import MonitoringError
from .metrics import PEER_REQUESTS
from .models import PrometheusSource, outbound_guard
from .promql import format_seconds


class PeerHTTPError(Exception):
    """The peer (or a proxy in front of it) failed with a 5xx that is not an API error: counts against the breaker."""


@dataclass(frozen=True)
class Answer:
    """A peer's HTTP answer, read whole."""

    status_code: int
    headers: dict[str, str]  # names in lower case
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self):
        return _json.loads(self.content)


@dataclass(frozen=True, eq=False)
class _Peer:
    """A source's base URL, headers and idle keep-alive connections (http.client, dialled through the
    outbound guard). A dashboard render makes a dozen requests side by side: httpx and httpcore cost
    ~0.6 ms more CPU per request than http.client (`Guard.http_connection`), the most of what a panel
    costs the console, and this connector needs none of their layers (it sends its credentials as a
    header, follows no redirect, and reads every answer whole)."""

    base_url: str
    headers: dict[str, str] = field(repr=False)  # the credential: never in a repr, a log or a traceback
    verify: bool
    connect_timeout: float
    timeout: float
    idle: list[http.client.HTTPConnection] = field(default_factory=list, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def request(self, method: str, path: str, *, params=None, data: dict | None = None, json: dict | None = None) -> Answer:
        target = urlsplit(self.base_url).path + path + (f"?{urlencode(params, doseq=True)}" if params else "")
        headers, body = self.headers, None
        if data is not None:
            headers, body = {**headers, "Content-Type": "application/x-www-form-urlencoded"}, urlencode(data, doseq=True).encode()
        elif json is not None:
            headers, body = {**headers, "Content-Type": "application/json"}, _json.dumps(json).encode()
        connection = self._take()
        try:
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            answer = Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        except BaseException:
            connection.close()
            raise
        if response.will_close:
            connection.close()
        else:
            self._give(connection)
        return answer

    def _take(self) -> http.client.HTTPConnection:
        """An idle connection the peer has not closed meanwhile (readable while idle: it hung up), or a new one."""
        with self.lock:
            while self.idle:
                connection = self.idle.pop()
                if connection.sock is not None and not select.select([connection.sock], [], [], 0)[0]:
                    return connection
                connection.close()
        guard = outbound_guard()
        return guard.http_connection(self.base_url, verify=self.verify, connect_timeout=self.connect_timeout, timeout=self.timeout)

    def _give(self, connection: http.client.HTTPConnection) -> None:
        with self.lock:
            if len(self.idle) < IDLE_CONNECTIONS:
                self.idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self.lock:
            idle, self.idle[:] = list(self.idle), []
        for connection in idle:
            connection.close()


IDLE_CONNECTIONS = 32  # per source and process: more than a dashboard's panels in flight at once
_peers: dict[tuple, _Peer] = {}
_peers_lock = threading.Lock()


def _peer(source: PrometheusSource, base_url: str) -> _Peer:
    """One peer (its idle connections) per source, URL and version of its settings, per process."""
    key = (source.pk, base_url, source.updated_at)
    with _peers_lock:
        peer = _peers.get(key)
        if peer is None:
            for old in [k for k in _peers if k[:2] == key[:2]]:
                _peers.pop(old).close()
            # Uncompressed answers: gzip cost Prometheus ~0.9 ms of CPU per query and the console ~0.3 ms
            # (bench/dashboards.py's 8 KB panels), more than the query itself; sources sit on the same
            # network as the console, where the bytes are cheaper than the CPU.
            headers = {"User-Agent": "opsconsole", "Accept-Encoding": "identity"}
            if source.auth_type == PrometheusSource.AUTH_BASIC:
                pair = f"{source.username}:{source.credential()}".encode()
                headers["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
            elif source.auth_type == PrometheusSource.AUTH_BEARER:
                headers["Authorization"] = f"Bearer {source.credential()}"
            # A little longer than the query timeout sent to Prometheus, so its own clear message wins.
            # A peer that hangs costs one such wait per call (timeouts are not retried, see call_through).
            wait = source.timeout_seconds
            connect, read = min(5.0, max(1.0, wait)), wait + max(0.5, min(2.0, wait))
            peer = _peers[key] = _Peer(base_url.rstrip("/"), headers, source.verify_tls, connect_timeout=connect, timeout=read)
        return peer


def _timestamp(value: datetime | None) -> str | None:
    return None if value is None else f"{value.timestamp():.3f}"


class _Connector(ABC):
    kind = ""

    def __init__(self, source: PrometheusSource, base_url: str):
        self.source = source
        self.http = _peer(source, base_url)
        self.breaker = breaker_for(f"{self.kind.lower()}:{source.name}")
        self.describe = f"{self.kind} of source {source.name!r} ({base_url})"

    def request(self, method: str, path: str, *, endpoint: str, retry: bool, **kwargs) -> Answer:
        """One call through the breaker; `retry` only for idempotent requests."""

        def send() -> Answer:
            outcome = "error"
            try:
                response = self.http.request(method, path, **kwargs)
                outcome = str(response.status_code)
                if response.status_code >= 500 and not self.is_api_error(response):
                    raise PeerHTTPError(f"HTTP {response.status_code} {scrub(response.text, self.source.secrets())[:200].strip()}")
                return response
            finally:
                PEER_REQUESTS.labels(self.kind.lower(), self.source.name, endpoint, outcome).inc()

        try:
            response = call_through(
                self.breaker,
                send,
                errors=(OSError, http.client.HTTPException, PeerHTTPError),
                timeouts=(TimeoutError,),
                retry=retry,
                describe=self.describe,
            )
        finally:
            record_breaker_states()
        if response.status_code in (401, 403):
            raise MonitoringError(
                f"{self.describe} refused the console's credentials (HTTP {response.status_code}): check the source's auth settings.", 502
            )
        return response

    @abstractmethod
    def is_api_error(self, response: Answer) -> bool:
        """A 5xx that is the API's own error answer (the peer is up and said why)."""


class PrometheusClient(_Connector):
    kind = "Prometheus"

    def __init__(self, source: PrometheusSource):
        super().__init__(source, source.base_url)

    def is_api_error(self, response: Answer) -> bool:
        return response.headers.get("content-type", "").startswith("application/json")

    def api(self, endpoint: str, params: dict | None = None, *, form: bool = False):
        """/api/v1/<endpoint>; returns the `data` member. `form` POSTs the params (long queries fit)."""
        with scrubbed(*self.source.secrets()):
            return self._api(endpoint, params, form=form)

    def _api(self, endpoint: str, params: dict | None, *, form: bool):
        params = {k: v for k, v in (params or {}).items() if v is not None}
        path = f"/api/v1/{endpoint}"
        if form:
            response = self.request("POST", path, endpoint=endpoint, retry=True, data=params)
        else:
            response = self.request("GET", path, endpoint=endpoint, retry=True, params=params)
        try:
            body = response.json()
        except ValueError:
            raise MonitoringError(
                f"{self.describe} did not answer with Prometheus JSON (HTTP {response.status_code}): check the URL.", 502
            ) from None
        if body.get("status") != "success":
            raise prometheus_error(body, response.status_code)
        return body.get("data")

    def query(self, query: str, time: datetime | None = None):
        return self.api("query", {"query": query, "time": _timestamp(time), "timeout": self.query_timeout}, form=True)

    def query_range(self, query: str, start: datetime, end: datetime, step: float):
        params = {"query": query, "start": _timestamp(start), "end": _timestamp(end), "step": f"{step:g}", "timeout": self.query_timeout}
        return self.api("query_range", params, form=True)

    @property
    def query_timeout(self) -> str:
        return format_seconds(self.source.timeout_seconds)


def prometheus_error(body: dict, status: int) -> MonitoringError:
    kind, detail = body.get("errorType", "error"), body.get("error", "no detail")
    if kind == "bad_data":
        return MonitoringError(f"Prometheus rejected the request (bad_data): {detail}", 400)
    if kind == "execution" and "deadline exceeded" in detail:
        kind = "timeout"  # the query timeout, hit while expanding series: Prometheus calls it an execution error
    if kind in ("timeout", "canceled"):
        return MonitoringError(
            f"Prometheus stopped the query ({kind}): {detail}. Narrow the time range, raise the step, or simplify the query.", 504
        )
    if kind == "execution":
        return MonitoringError(f"Prometheus could not evaluate the query (execution): {detail}", 422)
    if status == 404:
        return MonitoringError("Prometheus has no such API endpoint (HTTP 404): is the source's base URL right?", 502)
    return MonitoringError(f"Prometheus answered with an error ({kind}, HTTP {status}): {detail}", 502)


class AlertmanagerClient(_Connector):
    kind = "Alertmanager"

    def __init__(self, source: PrometheusSource):
        if not source.alertmanager_url:
            raise MonitoringError(f"Source {source.name!r} has no Alertmanager URL: add one on its settings page.", 409)
        super().__init__(source, source.alertmanager_url)

    def is_api_error(self, response: Answer) -> bool:
        # Alertmanager 0.25 answers an unknown silence with a 500 and a JSON string.
        return response.headers.get("content-type", "").startswith("application/json")

    def call(self, method: str, endpoint: str, *, retry: bool, **kwargs):
        with scrubbed(*self.source.secrets()):
            return self._call(method, endpoint, retry=retry, **kwargs)

    def _call(self, method: str, endpoint: str, *, retry: bool, **kwargs):
        response = self.request(method, f"/api/v2/{endpoint}", endpoint=endpoint.split("/", 1)[0], retry=retry, **kwargs)
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            detail = body if isinstance(body, str) else (body or {}).get("message", response.text)
            detail = scrub(str(detail), self.source.secrets())[:300]
            status = 404 if "not found" in str(detail).lower() or response.status_code == 404 else 400
            raise MonitoringError(f"Alertmanager refused the request (HTTP {response.status_code}): {str(detail).strip()}", status)
        return body

    def alerts(self, *, active=True, silenced=True, inhibited=True, unprocessed=True, filters: list[str] | None = None):
        flags = {"active": active, "silenced": silenced, "inhibited": inhibited, "unprocessed": unprocessed}
        params = [(k, str(v).lower()) for k, v in flags.items()] + [("filter", f) for f in filters or []]
        return self.call("GET", "alerts", retry=True, params=params)

    def silences(self, filters: list[str] | None = None):
        return self.call("GET", "silences", retry=True, params=[("filter", f) for f in filters or []])

    def create_silence(self, body: dict) -> str:
        # Not retried: a retry after a lost answer would create a second silence.
        return self.call("POST", "silences", retry=False, json=body)["silenceID"]

    def expire_silence(self, silence_id: str) -> None:
        self.call("DELETE", f"silence/{silence_id}", retry=True)
