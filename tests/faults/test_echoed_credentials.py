"""A peer that echoes the request's headers (Authorization included) in its
error body: the token and the Basic credentials never reach the delivery rows,
the job, the audit log, or any page a viewer or auditor can open. The same for
a Prometheus source behind a proxy that echoes its bearer token."""

import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.audit.models import AuditEvent
from apps.comms.models import Connector, Delivery
from apps.core.errors import OpsError
from apps.core.gateway import invoke
from apps.core.models import Job
from apps.monitoring.models import PrometheusSource
from tests.comms import peers as p

BASIC = base64.b64encode(f"{p.TWILIO_SID}:{p.TWILIO_TOKEN}".encode()).decode()


@pytest.fixture
def echoing(db, loopback_allowed, slack, twilio):
    Connector.objects.create(name="slack", kind="slack", url=slack.url + "/api/", secret=p.SLACK_TOKEN)
    Connector.objects.create(
        name="twilio", kind="sms", url=twilio.url, secret=p.TWILIO_TOKEN, options={"account_sid": p.TWILIO_SID, "from": "+15550000001"}
    )
    slack.echo_next(200, "error")  # Slack answers HTTP 200 with {"ok": false, "error": ...}
    twilio.echo_next(401, "message")  # Twilio answers 4xx with {"code", "message"}
    return slack, twilio


def test_credentials_echoed_by_peers_are_scrubbed_everywhere(echoing, make_user, actor_of, run_job, client):
    slack, twilio = echoing
    operator = actor_of(make_user("operator"))
    jobs = [
        run_job(invoke("comms.post_message", operator, {"channel_type": "slack", "recipient": "#ops", "title": "x"})),
        run_job(invoke("comms.post_message", operator, {"channel_type": "sms", "recipient": "+15550001234", "title": "y"})),
    ]
    # The peers really did echo the credentials back.
    assert f"Bearer {p.SLACK_TOKEN}" in str(slack.requests[-1]["headers"])
    assert BASIC in str(twilio.requests[-1]["headers"])
    errors = {d.kind: d.error for d in Delivery.objects.all()}
    assert all("rejected request with headers" in e for e in errors.values()), errors
    assert "'authorization': '[redacted]'" in errors["slack"]

    client.force_login(make_user("viewer"))
    pages = [client.get("/comms/deliveries/"), *(client.get(f"/jobs/{job.pk}/") for job in jobs)]
    client.force_login(make_user("auditor"))
    pages += [client.get("/audit/"), *(client.get(f"/audit/{e.seq}/") for e in AuditEvent.objects.all())]
    assert all(page.status_code == 200 for page in pages)
    assert "rejected request with headers" in pages[0].content.decode()  # the error is shown, scrubbed

    haystacks = [page.content.decode() for page in pages]
    haystacks += [d.error + d.note for d in Delivery.objects.all()]
    haystacks += [j.error + str(j.result) + str(j.params_redacted) for j in Job.objects.all()]
    haystacks += [str(e.params) + e.error for e in AuditEvent.objects.all()]
    for text in haystacks:
        for secret in (p.SLACK_TOKEN, p.TWILIO_TOKEN, BASIC):
            assert secret not in text


@pytest.fixture
def echo_server():
    """A proxy-like peer that fails every request with the request's headers in a plain-text body."""

    class Echo(BaseHTTPRequestHandler):
        def do_GET(self):
            self.do_POST()

        def do_POST(self):
            body = f"upstream error; Authorization: {self.headers['Authorization']}; all headers: {self.headers}".encode()
            self.send_response(502)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_prometheus_source_token_echoed_by_a_proxy_is_scrubbed(db, echo_server, make_user, actor_of):
    token = "prom-bearer-secret-4242"
    PrometheusSource.objects.create(name="default", base_url=echo_server, auth_type="bearer", secret=token)
    with pytest.raises(OpsError) as caught:
        invoke("monitoring.query", actor_of(make_user("viewer")), {"query": "up"})
    assert "upstream error" in caught.value.message and token not in caught.value.message
    assert all(token not in e.error for e in AuditEvent.objects.all())
