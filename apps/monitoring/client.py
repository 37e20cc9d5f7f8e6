"""Connectors to one source's Prometheus HTTP API and Alertmanager API v2, over the source's transport
(transport.py: keep-alive http.client connections through the outbound guard, with timeouts): the core
circuit breaker (one per peer), retries for reads, and every error mapped to MonitoringError or PeerUnavailable."""

from __future__ import annotations

import http.client
from abc import ABC, abstractmethod
from datetime import datetime

import pybreaker

from apps.core.errors import OpsError
from apps.core.metrics import record_breaker_states
from apps.core.resilience import breaker_for, call_through
from apps.core.scrub import scrub, scrubbed

from .errors import MonitoringError
from .metrics import PEER_REQUESTS
from .models import PrometheusSource
from .promql import format_seconds
from .transport import Answer, peer_for, side_by_side


class PeerHTTPError(Exception):
    """The peer (or a proxy in front of it) failed with a 5xx that is not an API error: counts against the breaker."""


def _present(params: dict | None) -> dict:
    return {k: v for k, v in (params or {}).items() if v is not None}


def _timestamp(value: datetime | None) -> str | None:
    return None if value is None else f"{value.timestamp():.3f}"


class _Connector(ABC):
    kind = ""

    def __init__(self, source: PrometheusSource, base_url: str):
        self.source = source
        self.http = peer_for(source, base_url)
        self.breaker = breaker_for(f"{self.kind.lower()}:{source.name}")
        self.describe = f"{self.kind} of source {source.name!r} ({base_url})"

    def request(self, method: str, path: str, *, endpoint: str, retry: bool, sent: Answer | Exception | None = None, **kwargs) -> Answer:
        """One call through the breaker; `retry` only for idempotent requests. `sent`: what this request
        met when it was already made (post_many), which then counts as its first attempt."""

        def send() -> Answer:
            nonlocal sent
            outcome = "error"
            try:
                if sent is None:
                    response = self.http.request(method, path, **kwargs)
                elif isinstance(sent, Exception):
                    sent, error = None, sent
                    raise error
                else:
                    response, sent = sent, None
                outcome = str(response.status_code)
                if response.status_code >= 500 and not self.is_api_error(response):
                    raise PeerHTTPError(f"HTTP {response.status_code} {scrub(response.text, self.source.secrets())[:200].strip()}")
                return response
            finally:
                PEER_REQUESTS.labels(self.kind.lower(), self.source.name, endpoint, outcome).inc()

        # An answer already in hand that is no 5xx is not retried: no retry policy is built for it (one per panel).
        answered = isinstance(sent, Answer) and sent.status_code < 500
        try:
            response = call_through(
                self.breaker,
                send,
                errors=(OSError, http.client.HTTPException, PeerHTTPError),
                timeouts=(TimeoutError,),
                retry=retry and not answered,
                describe=self.describe,
            )
        finally:
            record_breaker_states()
        if response.status_code in (401, 403):
            raise MonitoringError(
                f"{self.describe} refused the console's credentials (HTTP {response.status_code}): check the source's auth settings.", 502
            )
        return response

    def post_many(self, forms: list[tuple[str, str, dict]], *, retry: bool) -> list[Answer | OpsError]:
        """Form POSTs (path, endpoint, data) in flight at once, each then settled through the breaker as
        `request` settles one; returns, in order, each one's Answer or the error a person reads. Not sent
        ahead while the breaker is not closed: each then waits its turn as a trial call or is refused."""
        closed = self.breaker.current_state == pybreaker.STATE_CLOSED
        sent = self.http.post_many([(path, data) for path, _, data in forms]) if closed else [None] * len(forms)

        def settle(form: tuple[str, str, dict], outcome: Answer | Exception | None) -> Answer | OpsError:
            path, endpoint, data = form
            try:
                return self.request("POST", path, endpoint=endpoint, retry=retry, sent=outcome, data=data)
            except OpsError as exc:
                return exc

        if all(isinstance(outcome, Answer) for outcome in sent):
            return [settle(form, outcome) for form, outcome in zip(forms, sent, strict=True)]
        # Failures are retried after a backoff: side by side, so a peer that is down costs one backoff, not one per request.
        return list(side_by_side.map(settle, forms, sent))

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
        params = _present(params)
        path = f"/api/v1/{endpoint}"
        if form:
            response = self.request("POST", path, endpoint=endpoint, retry=True, data=params)
        else:
            response = self.request("GET", path, endpoint=endpoint, retry=True, params=params)
        return self._data_of(response)

    def api_many(self, calls: list[tuple[str, dict]]) -> list:
        """Several (endpoint, params) form POSTs in flight at once (a dashboard's panels); returns, in
        order, each one's `data` or the OpsError it met (MonitoringError, PeerUnavailable)."""
        with scrubbed(*self.source.secrets()):
            answers = self.post_many([(f"/api/v1/{endpoint}", endpoint, _present(params)) for endpoint, params in calls], retry=True)
            results = []
            for answer in answers:
                try:
                    results.append(answer if isinstance(answer, OpsError) else self._data_of(answer))
                except MonitoringError as exc:
                    results.append(exc)
            return results

    def _data_of(self, response: Answer):
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
        return self.api(*self.instant(query, time), form=True)

    def query_range(self, query: str, start: datetime, end: datetime, step: float):
        return self.api(*self.ranged(query, start, end, step), form=True)

    def instant(self, query: str, time: datetime | None) -> tuple[str, dict]:
        """An instant query as (endpoint, params), for `api` or `api_many`."""
        return "query", {"query": query, "time": _timestamp(time), "timeout": self.query_timeout}

    def ranged(self, query: str, start: datetime, end: datetime, step: float) -> tuple[str, dict]:
        """A range query as (endpoint, params), for `api` or `api_many`."""
        params = {"query": query, "start": _timestamp(start), "end": _timestamp(end), "step": f"{step:g}", "timeout": self.query_timeout}
        return "query_range", params

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
