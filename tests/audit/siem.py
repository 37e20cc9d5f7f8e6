"""Real SIEM receivers for the streaming tests: Debian's rsyslogd (our own instance,
foreground, own config/pid/state on a free loopback port, writing what it receives
to a file) and a local HTTPS JSON-lines receiver with a self-signed certificate."""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support import peers
from tests.support.processes import Process, free_port, port_open
from tests.support.waiting import wait_for

RSYSLOG_CONF = """
global(workDirectory="{dir}/state" maxMessageSize="256k")
module(load="imtcp")
input(type="imtcp" port="{port}" address="127.0.0.1")
template(name="raw" type="string" string="%rawmsg%\\n")
action(type="omfile" file="{dir}/out.log" template="raw")
"""

RSYSLOG_TLS_CONF = """
global(workDirectory="{dir}/state" maxMessageSize="256k" DefaultNetstreamDriver="gtls"
       DefaultNetstreamDriverCAFile="{dir}/cert.pem" DefaultNetstreamDriverCertFile="{dir}/cert.pem"
       DefaultNetstreamDriverKeyFile="{dir}/key.pem")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
input(type="imtcp" port="{port}" address="127.0.0.1")
template(name="raw" type="string" string="%rawmsg%\\n")
action(type="omfile" file="{dir}/out.log" template="raw")
"""


class Rsyslog:
    """rsyslogd on a free loopback port; with `tls`, over its gtls driver with a self-signed certificate."""

    def __init__(self, tls: bool = False):
        self.binary = peers.require_binary("rsyslogd")
        self.dir = Path(tempfile.mkdtemp(prefix="opsconsole-rsyslog-"))
        (self.dir / "state").mkdir()
        self.port = free_port()
        self.cert_pem = b""
        if tls:
            peers.require(any(Path("/usr/lib").glob("*/rsyslog/lmnsd_gtls.so")), "rsyslog's TLS driver (rsyslog-gnutls)")
            self.cert_pem, key_pem = self_signed()
            (self.dir / "cert.pem").write_bytes(self.cert_pem)
            (self.dir / "key.pem").write_bytes(key_pem)
        conf = RSYSLOG_TLS_CONF if tls else RSYSLOG_CONF
        (self.dir / "rsyslog.conf").write_text(conf.format(dir=self.dir, port=self.port))
        self.out = self.dir / "out.log"
        self.proc = None

    def start(self) -> None:
        argv = [self.binary, "-n", "-f", str(self.dir / "rsyslog.conf"), "-i", str(self.dir / "rsyslogd.pid")]
        self.proc = Process("rsyslogd", argv)
        self.proc.wait_until(lambda: port_open(self.port), what="listening")

    def stop(self) -> None:
        self.proc.stop()
        wait_for(lambda: not port_open(self.port), what="rsyslogd to stop listening")

    def lines(self) -> list[str]:
        return self.out.read_text().splitlines() if self.out.exists() else []

    def seqs(self) -> list[int]:
        return [int(re.search(r'seq="(\d+)"', line).group(1)) for line in self.lines()]


def self_signed(host: str = "localhost") -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for `host` and 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


class HttpsReceiver:
    """POSTed JSON lines, kept in arrival order, with the Authorization header each came with."""

    def __init__(self):
        self.cert_pem, key_pem = self_signed()
        self.dir = Path(tempfile.mkdtemp(prefix="opsconsole-https-sink-"))
        (self.dir / "cert.pem").write_bytes(self.cert_pem)
        (self.dir / "key.pem").write_bytes(key_pem)
        self.port = free_port()
        self.records: list[dict] = []  # {"line": str, "authorization": str}
        self.server = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                for line in body.splitlines():
                    receiver.records.append({"line": line, "authorization": self.headers.get("Authorization", "")})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.dir / "cert.pem", self.dir / "key.pem")
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def lines(self) -> list[str]:
        return [r["line"] for r in self.records]

    def seqs(self, fmt: str) -> list[int]:
        if fmt == "ocsf":
            return [json.loads(line)["metadata"]["sequence"] for line in self.lines()]
        return [int(re.search(r"externalId=(\d+)", json.loads(line)).group(1)) for line in self.lines()]


def in_order_at_least_once(received: list[int]) -> list[int]:
    """The first arrival of each seq, in arrival order; a re-sent seq may only repeat one already seen."""
    seen, first = set(), []
    for seq in received:
        if seq not in seen:
            seen.add(seq)
            first.append(seq)
    return first
