"""A source's HTTP transport: keep-alive http.client connections per source, dialled through the
outbound guard, and batches of requests in flight at once from one thread (post_many). What the
answers mean, the breaker and the retries are the connectors' (client.py)."""

from __future__ import annotations

import base64
import http.client
import json as _json
import select
import selectors
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from .models import PrometheusSource, outbound_guard


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
        connection = self._take()
        try:
            self._send(connection, method, path, params=params, data=data, json=json)
        except BaseException:
            connection.close()
            raise
        return self._answer(connection)

    def post_many(self, forms: list[tuple[str, dict]]) -> list[Answer | Exception]:
        """Form POSTs (path, data) in flight at once from this thread: each on its own connection (those
        not open yet dialled side by side), all sent before any answer is read, then each answer read as
        it arrives. Threads, one per request, had cost a 12-panel evaluation a third more CPU in GIL
        hand-offs (bench/dashboards.py: the console's 9.0 ms per evaluation, now 6.2-6.8 ms).
        Returns, in order, each one's Answer or the error it met: TimeoutError for one whose answer
        did not begin within the read timeout."""
        outcomes: list[Answer | Exception | None] = [None] * len(forms)
        connections: list[http.client.HTTPConnection] = []
        pending: set[int] = set()  # connections neither given back nor closed yet
        try:
            for i in range(len(forms)):
                connections.append(self._take())
                pending.add(i)
            fresh = [i for i, connection in enumerate(connections) if connection.sock is None]
            if len(fresh) > 1:  # opened lazily, one after another, each would wait for its own handshake
                for i, error in zip(fresh, side_by_side.map(_dial, [connections[i] for i in fresh]), strict=True):
                    outcomes[i] = error
            with selectors.DefaultSelector() as ready:
                for i, (path, data) in enumerate(forms):
                    if outcomes[i] is not None:  # it could not be dialled
                        continue
                    try:
                        self._send(connections[i], "POST", path, data=data)
                    except (OSError, http.client.HTTPException) as exc:
                        outcomes[i] = exc
                        continue
                    ready.register(connections[i].sock, selectors.EVENT_READ, i)
                deadline = time.monotonic() + self.timeout
                while ready.get_map() and (events := ready.select(max(0.0, deadline - time.monotonic()))):
                    for key, _ in events:
                        ready.unregister(key.fileobj)
                        i = key.data
                        pending.discard(i)  # _answer gives it back or closes it
                        try:
                            outcomes[i] = self._answer(connections[i])  # it began: the socket's timeout bounds each read
                        except (OSError, http.client.HTTPException) as exc:
                            outcomes[i] = exc
        finally:
            for i in pending:
                connections[i].close()
        return [TimeoutError(f"timed out after {self.timeout:g} s") if o is None else o for o in outcomes]

    def _send(self, connection: http.client.HTTPConnection, method: str, path: str, *, params=None, data=None, json=None) -> None:
        target = urlsplit(self.base_url).path + path + (f"?{urlencode(params, doseq=True)}" if params else "")
        headers, body = self.headers, None
        if data is not None:
            headers, body = {**headers, "Content-Type": "application/x-www-form-urlencoded"}, urlencode(data, doseq=True).encode()
        elif json is not None:
            headers, body = {**headers, "Content-Type": "application/json"}, _json.dumps(json).encode()
        connection.request(method, target, body=body, headers=headers)

    def _answer(self, connection: http.client.HTTPConnection) -> Answer:
        """Read the answer to the request sent on `connection`, then keep the connection if it may be reused."""
        try:
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
# For a batch (post_many), side by side: opening the connections it lacks (a cold dashboard on a distant
# source waits for one handshake, not one per panel) and retrying requests that failed.
side_by_side = ThreadPoolExecutor(max_workers=16, thread_name_prefix="peer")


def _dial(connection: http.client.HTTPConnection) -> Exception | None:
    try:
        connection.connect()
    except (OSError, http.client.HTTPException) as exc:
        return exc
    return None


_peers: dict[tuple, _Peer] = {}
_peers_lock = threading.Lock()


def peer_for(source: PrometheusSource, base_url: str) -> _Peer:
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
