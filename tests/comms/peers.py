"""Real peers on loopback for the comms tests.

Slack and Twilio are SaaS: small HTTP servers here speak their documented wire
formats (bearer/basic auth, JSON and form bodies, `ok`/`error`, HTTP 429 with
Retry-After, cursor pagination) so the real slack-sdk and httpx code runs.
The webhook receiver checks the HMAC signature and the timestamp like a real
consumer would; the SMTP server is aiosmtpd with AUTH.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
import warnings
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

SLACK_TOKEN = "xoxb-secret-slack-token-1234"
TWILIO_SID = "AC0123456789abcdef0123456789abcdef"
TWILIO_TOKEN = "twilio-secret-auth-token-5678"
SMTP_USER, SMTP_PASSWORD = "console", "smtp-secret-password-9012"
WEBHOOK_SECRET = "whsec-secret-hmac-key-3456"
TEAMS_KEY = "teams-secret-key-7890"
SECRETS = [SLACK_TOKEN, TWILIO_TOKEN, SMTP_PASSWORD, WEBHOOK_SECRET, TEAMS_KEY]


class Fake:
    """A threaded HTTP server whose handler is the subclass's `handle(request)`."""

    def __init__(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self._serve()

            def do_POST(self):
                self._serve()

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = {
                    "method": self.command, "path": parts.path, "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
                    "headers": {k.lower(): v for k, v in self.headers.items()}, "raw": raw, "at": time.monotonic(),
                }  # fmt: skip
                content_type = request["headers"].get("content-type", "")
                if "json" in content_type and raw:
                    request["json"] = json.loads(raw)
                elif raw:
                    request["form"] = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                with fake.lock:
                    fake.requests.append(request)
                    injected = fake.failures.popleft() if fake.failures else None
                if callable(injected):
                    injected = injected(request)
                status, headers, body = injected or fake.handle(request)
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.failures: deque = deque()
        self.released = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def fail_next(self, status: int, body=b"", headers: dict | None = None, times: int = 1) -> None:
        """Answer the next `times` requests with this instead of the normal answer."""
        for _ in range(times):
            self.failures.append((status, headers or {}, body))

    def echo_next(self, status: int, field: str) -> None:
        """Answer the next request with an error whose `field` repeats the request's headers,
        as a misconfigured peer or proxy does (Authorization included)."""
        self.failures.append(lambda req: (status, {}, {"ok": False, field: f"rejected request with headers {req['headers']}"}))

    def hang_next(self, times: int = 1) -> None:
        """Act on the next `times` requests (the message arrives), then never answer: the sender
        times out not knowing whether it was received. Released by reset() or stop()."""

        def hang(req):
            answer = self.handle(req)
            self.released.wait()
            return answer

        for _ in range(times):
            self.failures.append(hang)

    def calls(self, path_suffix: str = "") -> list[dict]:
        return [r for r in self.requests if r["path"].endswith(path_suffix)]

    def reset(self) -> None:
        self.released.set()
        with self.lock:
            self.requests.clear()
            self.failures.clear()
            self.released = threading.Event()

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


class SlackFake(Fake):
    """chat.postMessage, chat.update, conversations.create and conversations.list."""

    PAGE = 2  # Slack may return fewer than `limit`; small pages make the cursor walk visible

    def __init__(self):
        self.ts = itertools.count(1)
        self.reset_state()
        super().__init__()

    def reset_state(self):
        self.channels = {f"C{n:03d}": {"id": f"C{n:03d}", "name": name, "is_private": False, "is_archived": False, "num_members": n}
                         for n, name in enumerate(["ops", "deploys", "general", "random", "incidents"], 1)}  # fmt: skip
        self.messages: dict[tuple[str, str], dict] = {}

    def reset(self):
        super().reset()
        self.reset_state()

    def find(self, channel: str) -> dict | None:
        return self.channels.get(channel) or next((c for c in self.channels.values() if "#" + c["name"] == channel), None)

    def handle(self, req):
        if req["headers"].get("authorization") != f"Bearer {SLACK_TOKEN}":
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        method = req["path"].rsplit("/", 1)[-1]
        args = {**req["query"], **req.get("form", {}), **req.get("json", {})}
        if method == "chat.postMessage":
            channel = self.find(args.get("channel", ""))
            if channel is None:
                return 200, {}, {"ok": False, "error": "channel_not_found"}
            ts = f"1700000000.{next(self.ts):06d}"
            self.messages[(channel["id"], ts)] = {"text": args.get("text"), "blocks": args.get("blocks")}
            return 200, {}, {"ok": True, "channel": channel["id"], "ts": ts, "message": {"text": args.get("text")}}
        if method == "chat.update":
            if (args.get("channel"), args.get("ts")) not in self.messages:
                return 200, {}, {"ok": False, "error": "message_not_found"}
            self.messages[(args["channel"], args["ts"])] = {"text": args.get("text"), "blocks": args.get("blocks")}
            return 200, {}, {"ok": True, "channel": args["channel"], "ts": args["ts"]}
        if method == "conversations.create":
            name = args.get("name", "")
            if any(c["name"] == name for c in self.channels.values()):
                return 200, {}, {"ok": False, "error": "name_taken"}
            cid = f"C{len(self.channels) + 1:03d}"
            self.channels[cid] = {"id": cid, "name": name, "is_private": args.get("is_private") in ("1", True), "is_archived": False}
            return 200, {}, {"ok": True, "channel": self.channels[cid]}
        if method == "conversations.list":
            start = int(base64.b64decode(args["cursor"]).decode().split(":")[1]) if args.get("cursor") else 0
            size = min(int(args.get("limit", 100)), self.PAGE)
            items = list(self.channels.values())
            page, rest = items[start : start + size], items[start + size :]
            cursor = base64.b64encode(f"next:{start + size}".encode()).decode() if rest else ""
            return 200, {}, {"ok": True, "channels": page, "response_metadata": {"next_cursor": cursor}}
        return 200, {}, {"ok": False, "error": "unknown_method"}


class TwilioFake(Fake):
    """POST /2010-04-01/Accounts/{sid}/Messages.json, form-encoded, HTTP basic auth."""

    def handle(self, req):
        expected = "Basic " + base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
        if req["headers"].get("authorization") != expected:
            return 401, {}, {"code": 20003, "message": "Authenticate", "status": 401}
        if req["path"] != f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json":
            return 404, {}, {"code": 20404, "message": "The requested resource was not found", "status": 404}
        form = req.get("form", {})
        if not form.get("To", "").startswith("+"):
            return 400, {}, {"code": 21211, "message": f"The 'To' number {form.get('To')} is not a valid phone number.", "status": 400}
        sid = "SM" + hashlib.md5(req["raw"]).hexdigest()
        return 201, {}, {"sid": sid, "status": "queued", "to": form["To"], "from": form.get("From"), "body": form.get("Body")}


class Receiver(Fake):
    """A webhook consumer that verifies the console's signature, and a Teams webhook."""

    def __init__(self):
        self.accepted: list[dict] = []
        self.seen_ids: set[str] = set()
        super().__init__()

    def reset(self):
        super().reset()
        self.accepted.clear()
        self.seen_ids.clear()

    def handle(self, req):
        if req["path"] == f"/teams/{TEAMS_KEY}":
            attachment = (req.get("json", {}).get("attachments") or [{}])[0]
            if (
                attachment.get("contentType") != "application/vnd.microsoft.card.adaptive"
                or attachment["content"]["type"] != "AdaptiveCard"
            ):
                return 400, {"Content-Type": "text/plain"}, b"Bad payload"
            self.accepted.append({"teams": attachment["content"]})
            return 200, {"Content-Type": "text/plain"}, b"1"
        if req["path"] == "/hooks/ops":
            headers = req["headers"]
            timestamp, signature = headers.get("x-opsconsole-timestamp", ""), headers.get("x-opsconsole-signature", "")
            mac = hmac.new(WEBHOOK_SECRET.encode(), timestamp.encode() + b"." + req["raw"], hashlib.sha256).hexdigest()
            if not hmac.compare_digest(signature, "sha256=" + mac):
                return 401, {}, {"error": "bad signature"}
            if abs(time.time() - int(timestamp)) > 300:
                return 401, {}, {"error": "stale timestamp (replay?)"}
            delivery = headers.get("x-opsconsole-delivery", "")
            if delivery not in self.seen_ids:
                self.seen_ids.add(delivery)
                self.accepted.append({"webhook": json.loads(req["raw"]), "delivery": delivery})
            return 200, {}, {"ok": True}
        return 404, {}, {"error": "not found"}


class QuietController(Controller):
    def factory(self):
        # aiosmtpd warns that AUTH without TLS is unsafe: true, and fine on loopback in tests.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
            return super().factory()


class SmtpServer:
    """aiosmtpd on loopback, requiring AUTH (without TLS: loopback only)."""

    def __init__(self, port: int):
        self.messages: list = []
        self.logins: list[str] = []
        server = self

        class Handler:
            async def handle_DATA(self, smtp, session, envelope):
                server.messages.append(envelope)
                return "250 OK"

        def authenticator(smtp, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == SMTP_USER
                and auth_data.password.decode() == SMTP_PASSWORD
            )
            if ok:
                server.logins.append(SMTP_USER)
            return AuthResult(success=ok)

        self.controller = QuietController(
            Handler(), hostname="127.0.0.1", port=port, authenticator=authenticator, auth_required=True, auth_require_tls=False
        )
        self.controller.start()
        self.port = port

    def reset(self):
        self.messages.clear()
        self.logins.clear()

    def stop(self):
        self.controller.stop()
