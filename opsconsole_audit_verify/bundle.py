"""Check an export bundle (apps/audit/bundle.py writes it): the manifest's signature with
the console's public key, the events against the manifest's digest and count, the links
between consecutive events, the anchor's signature and, given the chain key, every link."""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass

from .chain import KeyOrder, key_change_problem, link, signature_ok

FORMAT = "opsconsole-audit-bundle/1"


class Rejected(Exception):
    """The bundle is not what the console signed; the message says why."""


@dataclass
class Report:
    count: int
    first_seq: int | None
    last_seq: int | None
    links_checked: bool
    anchor: str


def _manifest(zf: zipfile.ZipFile, public_key) -> dict:
    try:
        manifest = json.loads(zf.read("manifest.json"))
        if manifest.get("refused"):
            raise Rejected(f"the console refused to sign this bundle: {manifest['refused']}")
        signature = zf.read("manifest.sig").decode()
    except KeyError as exc:
        raise Rejected(f"the bundle has no {exc.args[0]}") from None
    if manifest.get("format") != FORMAT:
        raise Rejected(f"unknown bundle format {manifest.get('format')!r}")
    if not signature_ok(public_key, manifest, signature):
        raise Rejected("the manifest's signature does not verify with this public key (altered, or signed by another key)")
    return manifest


def _events(zf: zipfile.ZipFile, manifest: dict) -> list[dict]:
    data = zf.read("events.jsonl")
    if hashlib.sha256(data).hexdigest() != manifest["events_sha256"]:
        raise Rejected("events.jsonl differs from the signed manifest (an event was edited, added or removed)")
    events = [json.loads(line) for line in data.decode().splitlines() if line]
    seqs = [e["seq"] for e in events]
    if len(events) != manifest["count"] or (events and (seqs[0], seqs[-1]) != (manifest["first_seq"], manifest["last_seq"])):
        raise Rejected("the events do not match the manifest's count and seq range")
    return events


def _check_links(events: list[dict], contiguous: bool, chain_keys: dict[str, bytes] | None, ring: list[str]) -> None:
    prev, order = None, KeyOrder(ring)
    for event in events:
        seq = event["seq"]
        if prev is not None and seq <= prev["seq"]:
            raise Rejected(f"event #{seq} is out of order")
        if contiguous and prev is not None:
            if seq != prev["seq"] + 1:
                raise Rejected(f"events missing between #{prev['seq']} and #{seq}")
            if event["prev_hash"] != prev["hash"]:
                raise Rejected(f"event #{seq} does not link to event #{prev['seq']}")
            problem = key_change_problem(event, prev.get("key_id", ""))
            if problem:
                raise Rejected(f"event #{seq} {problem}")
        problem = order.problem(event)
        if problem:
            raise Rejected(f"event #{seq} {problem}")
        if chain_keys is not None and event.get("key_id"):
            key = chain_keys.get(event["key_id"])
            if key is None:
                raise Rejected(f"event #{seq} is linked with key {event['key_id']}, which was not given")
            if link(key, event["prev_hash"], event) != event["hash"]:
                raise Rejected(f"event #{seq} was altered (its link does not match its content)")
        prev = event


def _check_anchor(zf: zipfile.ZipFile, public_key, events: list[dict]) -> str:
    if "anchor.json" not in zf.namelist():
        return "no anchor in the bundle"
    entry = json.loads(zf.read("anchor.json"))
    anchor = entry.get("anchor", {})
    if not signature_ok(public_key, anchor, entry.get("signature", "")):
        raise Rejected("anchor.json's signature does not verify with this public key")
    by_seq = {e["seq"]: e["hash"] for e in events}
    if anchor["seq"] in by_seq and by_seq[anchor["seq"]] != anchor["hash"]:
        raise Rejected(f"event #{anchor['seq']} differs from the signed anchor of {anchor['at']}")
    return f"anchor #{anchor['seq']} of {anchor['at']}" + (
        " matches its event" if anchor["seq"] in by_seq else " (outside the bundle's events)"
    )


def verify(path: str, public_key, chain_keys: dict[str, bytes] | None = None) -> Report:
    """Raise Rejected, or say what was checked. `public_key`: a cryptography Ed25519PublicKey;
    `chain_keys`: key id -> chain key in ring order (oldest first), to recompute every keyed link too."""
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise Rejected(f"{path} is not a readable zip: {exc}") from None
    with zf:
        manifest = _manifest(zf, public_key)
        events = _events(zf, manifest)
        # The ring's order: the auditor's chain key file when given, else the one the console signed.
        ring = list(chain_keys) if chain_keys is not None else manifest.get("chain_key_ids", [])
        _check_links(events, bool(manifest.get("contiguous")), chain_keys, ring)
        anchor = _check_anchor(zf, public_key, events)
    return Report(len(events), manifest["first_seq"], manifest["last_seq"], chain_keys is not None, anchor)
