"""The two audit keys, both kept out of the database:

- the chain key ring (HMAC-SHA256 links): AUDIT_CHAIN_KEY ("key1,key2": the last one links
  new events, the earlier ones still verify old ones) or AUDIT_CHAIN_KEY_FILE (one key a
  line, the last one current). With neither set, the embedded default creates
  `<data dir>/audit-chain.key` (mode 0600) so `bin/console` and the tests have one.
- the Ed25519 signing key of anchors and export manifests: AUDIT_SIGNING_KEY_FILE (PEM,
  created the same way). Its public half is published (`manage.py audit_public_key`,
  /audit/public-key.pem) so anyone can check a signature offline.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import tempfile
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from opsconsole_audit_verify.chain import key_id


def _create_private(path: Path, content: bytes) -> None:
    """Write a new key file (0600) whole, or keep the one another process wrote first:
    web and worker processes starting together on one data directory must share one key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(temp, path)  # atomic, and fails if the file exists: nobody reads a half-written key
    except FileExistsError:
        pass
    finally:
        os.unlink(temp)


@cache
def _ring(env_value: str, file_path: str) -> tuple[tuple[str, bytes], ...]:
    if env_value.strip():
        keys = [k.strip() for k in env_value.split(",") if k.strip()]
    else:
        path = Path(file_path)
        if not path.exists():
            _create_private(path, (secrets.token_hex(32) + "\n").encode())
        keys = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not keys or any(len(k) < 32 for k in keys):
        raise ImproperlyConfigured("The audit chain key ring is empty or has a key shorter than 32 characters.")
    return tuple((key_id(k.encode()), k.encode()) for k in keys)


def chain_ring() -> dict[str, bytes]:
    """Every configured chain key by id (retired ones verify old events)."""
    return dict(_ring(settings.AUDIT_CHAIN_KEY, settings.AUDIT_CHAIN_KEY_FILE))


def current_chain_key() -> tuple[str, bytes]:
    """(key id, key) that links new events."""
    return _ring(settings.AUDIT_CHAIN_KEY, settings.AUDIT_CHAIN_KEY_FILE)[-1]


@cache
def _signing_key(file_path: str) -> Ed25519PrivateKey:
    path = Path(file_path)
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _create_private(path, pem)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"AUDIT_SIGNING_KEY_FILE {path} is not an Ed25519 private key.")
    return key


def signing_key() -> Ed25519PrivateKey:
    return _signing_key(settings.AUDIT_SIGNING_KEY_FILE)


def public_pem() -> bytes:
    return signing_key().public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_fingerprint() -> str:
    return hashlib.sha256(public_pem()).hexdigest()[:16]


def sign(message: bytes) -> str:
    return base64.b64encode(signing_key().sign(message)).decode()
