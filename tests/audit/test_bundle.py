"""The signed export bundle, checked by the standalone verifier (no Django import) with the
published public key: a genuine bundle passes, an edited, shortened or re-signed one fails."""

import base64
import hashlib
import json
import subprocess
import sys
import zipfile

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command

from apps.audit import keys
from apps.audit.bundle import _line
from apps.audit.chain import row_values
from apps.audit.models import AuditEvent
from apps.audit.writer import record
from opsconsole_audit_verify.chain import key_id, link, signed_message
from tests.support.processes import ROOT

from .test_chain import raw
from .test_keyed_chain import append_forged, change_back

CHAIN_KEY, NEW_KEY = "k" * 40, "n" * 40
# Run the verifier as `python -m opsconsole_audit_verify …` with Django made unimportable: it must
# work on a machine without the console.
NO_DJANGO = (
    "import runpy, sys; sys.modules['django'] = None; runpy.run_module('opsconsole_audit_verify', run_name='__main__', alter_sys=True)"
)


@pytest.fixture(autouse=True)
def files(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_PATH = str(tmp_path / "anchors.jsonl")
    settings.AUDIT_CHAIN_KEY = CHAIN_KEY


@pytest.fixture
def auditor(client_as):
    for i in range(6):
        record(operation="storage.delete" if i % 2 else "monitoring.query", outcome="ok", channel="web", target=f"t{i}", params={"i": i})
    call_command("audit_anchor")
    return client_as("auditor")  # its login is event #7, the export itself #8


def download(client, tmp_path, query="") -> str:
    response = client.get("/audit/export.zip" + query)
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    path = tmp_path / "bundle.zip"
    path.write_bytes(b"".join(response.streaming_content))
    return str(path)


def public_key(client, tmp_path) -> str:
    path = tmp_path / "pub.pem"
    path.write_bytes(client.get("/audit/public-key.pem").content)
    return str(path)


def verifier(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", NO_DJANGO, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin"}
    )


def rewrite(path, events=None, sign_with=None, manifest_changes=None):
    """Rebuild the bundle with other events and/or a manifest re-signed with another key."""
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    manifest = json.loads(members["manifest.json"])
    if events is not None:
        members["events.jsonl"] = "".join(json.dumps(e, sort_keys=True) + "\n" for e in events).encode()
        manifest |= {"events_sha256": hashlib.sha256(members["events.jsonl"]).hexdigest(), "count": len(events)}
        manifest |= {"first_seq": events[0]["seq"], "last_seq": events[-1]["seq"]}
    manifest |= manifest_changes or {}
    members["manifest.json"] = json.dumps(manifest).encode()
    if sign_with is not None:
        members["manifest.sig"] = base64.b64encode(sign_with.sign(signed_message(manifest))).decode().encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def events_of(path) -> list[dict]:
    with zipfile.ZipFile(path) as zf:
        return [json.loads(line) for line in zf.read("events.jsonl").decode().splitlines()]


def test_a_genuine_bundle_verifies_offline_without_django(auditor, tmp_path):
    path, pub = download(auditor, tmp_path), public_key(auditor, tmp_path)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["anchor.json", "events.jsonl", "manifest.json", "manifest.sig"]
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["count"] == 8 and manifest["contiguous"] and manifest["signer"] == keys.public_fingerprint()
    result = verifier(path, "--key", pub)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: 8 events #1–#8, manifest signature valid" in result.stdout and "anchor #6" in result.stdout
    key_file = tmp_path / "chain.key"
    key_file.write_text(CHAIN_KEY + "\n")
    result = verifier(path, "--key", pub, "--chain-key-file", str(key_file))
    assert result.returncode == 0 and "every link recomputed with the chain key" in result.stdout


def test_a_filtered_bundle_verifies(auditor, tmp_path):
    path = download(auditor, tmp_path, "?operation=storage.delete")
    assert [e["seq"] for e in events_of(path)] == [2, 4, 6]
    result = verifier(path, "--key", public_key(auditor, tmp_path))
    assert result.returncode == 0 and "OK: 3 events #2–#6" in result.stdout


def test_an_edited_event_is_rejected(auditor, tmp_path):
    path, pub = download(auditor, tmp_path), public_key(auditor, tmp_path)
    events = events_of(path)
    events[2]["outcome"] = "denied"
    rewrite(path, events)
    result = verifier(path, "--key", pub)
    assert result.returncode == 1 and "REJECTED: the manifest's signature does not verify" in result.stdout


def test_an_edited_event_with_the_old_manifest_is_rejected(auditor, tmp_path):
    path, pub = download(auditor, tmp_path), public_key(auditor, tmp_path)
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    members["events.jsonl"] = members["events.jsonl"].replace(b'"outcome": "ok"', b'"outcome": "no"', 1)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    result = verifier(path, "--key", pub)
    assert result.returncode == 1 and "events.jsonl differs from the signed manifest" in result.stdout


def test_a_removed_event_re_signed_with_another_key_is_rejected(auditor, tmp_path):
    path, pub = download(auditor, tmp_path), public_key(auditor, tmp_path)
    events = events_of(path)
    rewrite(path, events[:3] + events[4:], sign_with=Ed25519PrivateKey.generate())
    result = verifier(path, "--key", pub)
    assert result.returncode == 1 and "signed by another key" in result.stdout


def test_with_the_chain_key_an_insider_holding_only_the_signing_key_is_caught(auditor, tmp_path):
    path, pub = download(auditor, tmp_path), public_key(auditor, tmp_path)
    events = events_of(path)
    del events[3]  # re-link the rest by plain renumbering; the signing key re-signs the manifest
    for i, event in enumerate(events[3:], start=3):
        event["seq"], event["prev_hash"] = event["seq"] - 1, events[i - 1]["hash"]
    rewrite(path, events, sign_with=keys.signing_key(), manifest_changes={"count": len(events)})
    key_file = tmp_path / "chain.key"
    key_file.write_text(CHAIN_KEY + "\n")
    result = verifier(path, "--key", pub, "--chain-key-file", str(key_file))
    assert result.returncode == 1 and "REJECTED: event #4 was altered" in result.stdout


@pytest.mark.parametrize("query", ["", "?operation=storage.delete"])
def test_the_console_does_not_sign_an_event_edited_in_the_database(auditor, tmp_path, query):
    """An insider without the chain key edits a row and leaves its link alone: the offline
    verifier, without the chain key, cannot see it, so the console must not sign it."""
    raw("UPDATE audit_auditevent SET actor = 'mallory', params = %s WHERE seq = 4", ['{"i": 99}'])
    path = download(auditor, tmp_path, query)
    with zipfile.ZipFile(path) as zf:
        assert "manifest.sig" not in zf.namelist()
    assert [e["seq"] for e in events_of(path)] == ([1, 2, 3] if not query else [2])
    result = verifier(path, "--key", public_key(auditor, tmp_path))
    assert result.returncode == 1, result.stdout
    assert "REJECTED: the console refused to sign this bundle: event #4 was altered" in result.stdout


def test_the_console_does_not_sign_a_chain_re_linked_with_the_key_before_its_anchor(auditor, tmp_path):
    """An insider holding the chain key rewrites #2 and re-links every later event: each link is
    valid, but the log no longer matches the signed anchor (#6), even in a bundle without #6."""
    prev_hash = AuditEvent.objects.get(seq=1).hash
    for event in AuditEvent.objects.filter(seq__gte=2).order_by("seq"):
        if event.seq == 2:
            event.target = "rewritten"
        event.prev_hash = prev_hash
        prev_hash = link(CHAIN_KEY.encode(), prev_hash, row_values(event))
        raw("UPDATE audit_auditevent SET target = %s, prev_hash = %s, hash = %s WHERE seq = %s",
            [event.target, event.prev_hash, prev_hash, event.seq])  # fmt: skip
    path = download(auditor, tmp_path, "?operation=monitoring.query")
    assert [e["seq"] for e in events_of(path)] == [1, 3, 5]
    result = verifier(path, "--key", public_key(auditor, tmp_path))
    assert result.returncode == 1, result.stdout
    assert "REJECTED: the console refused to sign this bundle: event #6 differs from the anchor" in result.stdout


@pytest.fixture
def relinked_with_a_retired_key(auditor, settings):
    """The key rotated to NEW_KEY (#8 is the key change, #9 an event); then a holder of the leaked
    retired key records a key change back (#10) and a forged event (#11)."""
    settings.AUDIT_CHAIN_KEY = f"{CHAIN_KEY},{NEW_KEY}"
    record(operation="monitoring.query", outcome="ok", channel="web", target="after rotation")
    append_forged(CHAIN_KEY, change_back(CHAIN_KEY, NEW_KEY), {"operation": "storage.delete", "app": "storage", "target": "x"})
    return auditor


def test_the_console_does_not_sign_events_linked_with_a_retired_key(relinked_with_a_retired_key, tmp_path):
    path = download(relinked_with_a_retired_key, tmp_path)
    assert events_of(path)[-1]["seq"] == 9
    result = verifier(path, "--key", public_key(relinked_with_a_retired_key, tmp_path))
    assert result.returncode == 1, result.stdout
    assert (
        f"refused to sign this bundle: event #10 is linked with key {key_id(CHAIN_KEY.encode())} after the chain moved on" in result.stdout
    )


@pytest.mark.parametrize("ring", ["signed-in-the-manifest", "not-in-the-manifest", "chain-key-file"])
def test_the_verifier_rejects_events_linked_with_a_retired_key(relinked_with_a_retired_key, tmp_path, ring):
    """The same events in a signed bundle (as a console without the rule would sign them): the
    standalone verifier holds the keys to the ring's order (the chain key file's, or the one the
    manifest carries) and, without either, never lets the chain go back to a key it left."""
    client = relinked_with_a_retired_key
    path, pub = download(client, tmp_path), public_key(client, tmp_path)
    events = [json.loads(_line(e)) for e in AuditEvent.objects.filter(seq__lte=11).order_by("seq")]
    changes = {"refused": ""} | ({"chain_key_ids": []} if ring != "signed-in-the-manifest" else {})
    rewrite(path, events, sign_with=keys.signing_key(), manifest_changes=changes)
    args = ["--key", pub]
    if ring == "chain-key-file":
        (tmp_path / "chain.key").write_text(f"{CHAIN_KEY}\n{NEW_KEY}\n")
        args += ["--chain-key-file", str(tmp_path / "chain.key")]
    result = verifier(path, *args)
    assert result.returncode == 1, result.stdout
    assert f"REJECTED: event #10 is linked with key {key_id(CHAIN_KEY.encode())} after the chain moved on" in result.stdout


def test_public_key_command_prints_the_published_key(db, capsys, client_as):
    call_command("audit_public_key")
    assert capsys.readouterr().out.encode() == client_as("auditor").get("/audit/public-key.pem").content == keys.public_pem()
