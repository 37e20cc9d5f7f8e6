"""The one outbound guard's policy (apps/core/outbound.py): which addresses a
connector may call, and what the refusal says. Connect-time pinning against
real peers is in tests/faults/test_dns_rebinding.py."""

import http.server
import threading

import httpx
import pytest

from apps.core.outbound import Guard, OutboundRefused, display_url, use_resolver
from apps.core.scrub import scrub

LOOPBACK = ["127.0.0.0/8", "::1/128"]


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:169.254.169.254]:9090",
        "http://[fe80::1]:9090",
        "http://100.100.100.200/",
    ],
)
def test_link_local_and_metadata_are_refused_even_when_allow_listed(url):
    with pytest.raises(OutboundRefused, match="link-local or cloud metadata"):
        Guard(["0.0.0.0/0", "::/0"]).check(url)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/x", "http://[::1]/x", "http://10.1.2.3/x", "http://192.168.0.10/x", "http://172.16.5.5/x",
     "http://[::ffff:127.0.0.1]/x", "http://0.0.0.0/x", "http://[fc00::1]/x"],
)  # fmt: skip
def test_internal_addresses_need_the_allow_list(url):
    with pytest.raises(OutboundRefused, match="not allow-listed"):
        Guard().check(url)


def test_the_allow_list_lets_exactly_its_networks_through():
    guard = Guard(["10.1.2.0/24", *LOOPBACK, "not a network"])
    assert guard.check("http://10.1.2.3:8080/x").address == "10.1.2.3"
    assert guard.check("http://127.0.0.1/").address == "127.0.0.1"
    with pytest.raises(OutboundRefused):
        guard.check("http://10.1.3.1/x")


def test_a_callable_allow_list_is_read_on_every_check():
    allowed: list[str] = []
    guard = Guard(lambda: allowed)
    with pytest.raises(OutboundRefused):
        guard.pin("10.0.0.1", 80)
    allowed.append("10.0.0.0/8")
    assert guard.pin("10.0.0.1", 80) == "10.0.0.1"


def test_public_addresses_pass():
    assert Guard().check("https://93.184.215.14:8443/hook?key=abc").address == "93.184.215.14"


def test_every_address_of_a_name_must_pass():
    with use_resolver(lambda host, port: ["93.184.215.14", "10.0.0.5"]), pytest.raises(OutboundRefused, match=r"10\.0\.0\.5"):
        Guard().check("https://mixed.example/")


def test_a_name_that_does_not_resolve_is_refused():
    with use_resolver(lambda host, port: []), pytest.raises(OutboundRefused, match="does not resolve") as caught:
        Guard(LOOPBACK).check("http://nowhere.invalid/")
    assert caught.value.transient


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "http:///nohost", "tcp://example.com:2376"])
def test_only_the_expected_schemes_with_a_host(url):
    with pytest.raises(OutboundRefused, match="is not a"):
        Guard().check(url)


def test_docker_engines_use_tcp_urls():
    assert Guard(LOOPBACK).check("tcp://127.0.0.1:2376", schemes=("tcp",)).port == 2376


def test_refusals_and_displayed_urls_never_show_a_path_or_query():
    url = "http://127.0.0.1/teams/secret-key-in-path?sig=abc"
    with pytest.raises(OutboundRefused) as caught:
        Guard().check(url)
    assert "secret-key-in-path" not in caught.value.message and "sig=abc" not in caught.value.message
    assert display_url(url) == "http://127.0.0.1/…"
    assert display_url("https://hooks.example:8443/services/T0/B0/XyZ?token=t") == "https://hooks.example:8443/…"
    assert display_url("") == ""


def test_the_scrubber_removes_credentials_and_credential_headers():
    token, webhook = "xoxb-secret-token-1", "https://hooks.example/services/T0/B0/averylongwebhookkey123"
    echoed = (
        f"bad request: {{'Authorization': 'Bearer {token}', 'Cookie': 'session=abc123'}} url={webhook} "
        "path /services/T0/B0/averylongwebhookkey123 basic Basic dXNlcjpzM2NyZXQtcGFzcw== https://user:pw@host/x"
    )
    clean = scrub(echoed, [token, webhook, "user:s3cret-pass"])
    for leaked in (token, "averylongwebhookkey123", "session=abc123", "dXNlcjpzM2NyZXQtcGFzcw==", "user:pw"):
        assert leaked not in clean
    assert clean.startswith("bad request:")


class _NoContent(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def _get_httpx(url: str) -> int:
    return httpx.Client(transport=Guard(LOOPBACK).httpx_transport()).get(url).status_code


def _get_http_client(url: str) -> int:
    connection = Guard(LOOPBACK).http_connection(url, connect_timeout=5, timeout=5)
    try:
        connection.request("GET", "/")
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.mark.parametrize("get", [_get_httpx, _get_http_client], ids=["httpx", "http.client"])
def test_each_checked_address_is_tried_in_turn(get):
    """A name whose first address does not answer (an IPv6 ::1 the peer does not listen on) still connects;
    a name with a refused address is not dialled at all."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NoContent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    answers = {"two.test": ["::1", "127.0.0.1"], "inside.test": ["127.0.0.1", "10.1.2.3"]}
    try:
        with use_resolver(lambda host, port: answers.get(host, [])):
            assert get(f"http://two.test:{port}/") == 204
            with pytest.raises(OutboundRefused, match=r"10\.1\.2\.3"):
                get(f"http://inside.test:{port}/")
    finally:
        server.shutdown()
        server.server_close()


def test_the_http_client_connection_checks_the_certificate_against_the_name_it_pinned(tmp_path):
    """The socket dials the checked address; TLS still verifies the certificate against the URL's name:
    a certificate for that name passes, the same server reached as another name does not, an unknown
    issuer does not (the default trust is certifi's, as with httpx), and verify=False skips the check."""
    import ssl

    from tests.audit.siem import self_signed

    cert, key = self_signed("tls.test")
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NoContent)
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server.socket = served.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port, guard = server.server_address[1], Guard(LOOPBACK)
    trusting = ssl.create_default_context(cafile=tmp_path / "cert.pem")

    def get(name: str, verify) -> int:
        connection = guard.http_connection(f"https://{name}:{port}/", verify=verify, connect_timeout=5, timeout=5)
        try:
            connection.request("GET", "/")
            return connection.getresponse().status
        finally:
            connection.close()

    try:
        with use_resolver(lambda host, port: ["127.0.0.1"] if host.endswith(".test") else []):
            assert get("tls.test", trusting) == 204
            with pytest.raises(ssl.SSLCertVerificationError, match=r"match"):
                get("other.test", trusting)
            with pytest.raises(ssl.SSLCertVerificationError):
                get("tls.test", True)
            assert get("other.test", False) == 204
    finally:
        server.shutdown()
        server.server_close()
