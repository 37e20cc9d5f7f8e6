"""The canonical form of an audit event and its keyed link.

An event is a dict of JSON values (datetimes already as "YYYY-MM-DDTHH:MM:SS.ffffffZ").
Its link is HMAC-SHA256(key, prev_hash + "\\n" + canonical JSON of every field but
`hash` and `prev_hash`). Fields whose value is empty ("", None, {}, []) are left out of
the canonical form, so a field added to the table later (with an empty default) leaves
the links of older events valid, while any non-empty value of any field is covered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable

GENESIS = "0" * 64
# Not part of the linked content: the row id is the database's, the two hashes are the link itself.
UNLINKED = frozenset({"id", "hash", "prev_hash"})
# The key id recorded on events linked with the unkeyed SHA-256 chain of earlier versions.
LEGACY = ""
# The event that changes the key (or switches from the legacy chain): the first event linked
# with the new key, its params {"from": old key id or "sha256", "to": new key id}.
KEY_CHANGE = "audit.chain_key"


def _empty(value) -> bool:
    return value is None or value == "" or value == {} or value == []


def canonical(values: dict) -> str:
    body = {name: value for name, value in values.items() if name not in UNLINKED and not _empty(value)}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def key_id(key: bytes) -> str:
    """A public name for a key (recorded on each event): it does not reveal the key."""
    return hashlib.sha256(b"opsconsole-audit-chain-key:" + key).hexdigest()[:16]


def link(key: bytes, prev_hash: str, values: dict) -> str:
    return hmac.new(key, (prev_hash + "\n" + canonical(values)).encode(), hashlib.sha256).hexdigest()


def key_change_problem(values: dict, prev_key_id: str | None) -> str:
    """Why this event may not change the key from `prev_key_id` ("" when it may)."""
    if prev_key_id is None or values.get("key_id", "") == prev_key_id:
        return ""
    if values.get("key_id", "") == LEGACY:
        return "goes back to the unkeyed chain after keyed events"
    params = values.get("params") or {}
    expected = {"from": prev_key_id or "sha256", "to": values.get("key_id")}
    if values.get("operation") != KEY_CHANGE or {k: params.get(k) for k in expected} != expected:
        return f"changes the chain key ({prev_key_id or 'sha256'} → {values.get('key_id')}) without a recorded key change"
    return ""


class KeyOrder:
    """The chain's keys only move forward. Retired keys stay in the ring so their events verify, so
    whoever holds a leaked retired key could otherwise record a key change back to it and link new
    events with it. Once the chain has left a key, no later event may be linked with it, nor with a
    key earlier in the ring (`ring`: key ids oldest first, when known) than one the chain reached.
    Fed the events in seq order (gaps allowed: a filtered bundle), it says what breaks that rule."""

    def __init__(self, ring: Iterable[str] = (), start: str | None = None):
        self.rank = {kid: i for i, kid in enumerate(ring)}
        self.current, self.left = start, set()

    def problem(self, values: dict) -> str:
        key = values.get("key_id", "")
        current, self.current = self.current, key
        if current is None or key == current:
            return ""
        self.left.add(current)
        if key in self.left or self.rank.get(key, len(self.rank)) < self.rank.get(current, -1):
            return f"is linked with key {key} after the chain moved on to key {current}: a retired key never links again"
        return ""


def signed_message(payload: dict) -> bytes:
    """The bytes an anchor's or a manifest's Ed25519 signature covers."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature_ok(public_key, payload: dict, signature_b64: str) -> bool:
    """`public_key`: a cryptography Ed25519PublicKey."""
    import base64

    from cryptography.exceptions import InvalidSignature

    try:
        public_key.verify(base64.b64decode(signature_b64, validate=True), signed_message(payload))
    except (InvalidSignature, ValueError):
        return False
    return True
