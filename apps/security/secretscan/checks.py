"""Validators shared by the rules: placeholders, Shannon entropy, and the
shapes of things that look random but are not secrets (hashes, UUIDs).

Entropy thresholds (bits per character, Shannon, over the candidate string):

* base64/alphanumeric candidates of length n >= 20 need
  H >= min(4.25, log2(n) - 0.7), i.e. 3.62 at 20 chars, 3.88 at 24,
  4.11 at 28 and 4.25 from 32 chars on, plus at least one digit, one upper-
  and one lower-case letter. Random base64 strings reach these in >= 98 % of
  cases (1st percentile: 3.65 at 20, 3.89 at 24, 4.23 at 32, 4.47 at 40);
  camel-case identifiers and words stay below (34-char identifiers: ~3.8-4.2
  and usually without digits).
* hex candidates (only when the assigned name says secret/token/key/password)
  need length >= 32 and H >= 3.0 (random hex: 1st percentile 3.27 at 32).
  Hex values under hash-like names (sha, md5, digest, checksum, hash, etag,
  commit, fingerprint) and UUIDs are never reported by the generic detectors.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import Counter

PLACEHOLDER_WORDS = (
    "example",
    "sample",
    "dummy",
    "placeholder",
    "changeme",
    "change_me",
    "change-me",
    "your_",
    "your-",
    "yourkey",
    "xxxx",
    "****",
    "....",
    "redacted",
    "insert",
    "replace",
    "fake",
    "todo",
)
TEMPLATE_MARKERS = ("${", "{{", "%(", "$(", "#{", "<", ">", "{%", "[[")
WEAK_EXAMPLES = {"password", "passwd", "secret", "pass", "admin", "root", "test", "user", "changeit", "letmein", "hunter2"}
_SEQUENCES = ("0123456789", "1234567890", "abcdefghij", "abcdef123456", "qwerty")
HEX_RE = re.compile(r"^[0-9a-fA-F]+$")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
HASH_NAME_RE = re.compile(r"(sha\d*|md5|digest|checksum|hash|etag|commit|revision|fingerprint|integrity|nonce|uuid|guid|_id$|^id$)", re.I)
SECRET_NAME_RE = re.compile(r"(secret|token|passw|pwd|api.?key|access.?key|private.?key|auth|credential|signing|salt|session)", re.I)
REFERENCE_RE = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+|[A-Z][A-Z0-9_]*|env\b.*|process\.env.*)$")


def entropy(text: str) -> float:
    if not text:
        return 0.0
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def base64_threshold(length: int) -> float:
    return min(4.25, math.log2(max(length, 2)) - 0.7)


def is_placeholder(value: str) -> bool:
    """Documentation values (AKIAIOSFODNN7EXAMPLE), templates (${X}) and dummies."""
    low = value.lower()
    if low in WEAK_EXAMPLES:
        return True
    if any(word in low for word in PLACEHOLDER_WORDS) or any(seq in low for seq in _SEQUENCES):
        return True
    return len(set(low)) <= 3  # "aaaaaaaa", "x-x-x-x"


def is_template(value: str) -> bool:
    """A value filled in elsewhere: ${DB_PASSWORD}, {{ vault_token }}, <your-key>."""
    return any(marker in value for marker in TEMPLATE_MARKERS)


def is_reference(value: str) -> bool:
    """A variable, constant or environment lookup rather than a literal secret."""
    return bool(REFERENCE_RE.match(value))


def looks_like_hash_or_uuid(value: str) -> bool:
    return bool(UUID_RE.match(value)) or (bool(HEX_RE.match(value)) and len(value) in (32, 40, 56, 64, 96, 128))


def high_entropy(value: str, name: str = "") -> bool:
    """The entropy detector's decision for a literal assigned to `name`."""
    if len(value) < 20 or (looks_like_hash_or_uuid(value) and not SECRET_NAME_RE.search(name)):
        return False
    if name and HASH_NAME_RE.search(name):
        return False
    if value.startswith(("sha1-", "sha256-", "sha384-", "sha512-", "http", "/", "./", "eyJ")) or "://" in value:
        return False
    if HEX_RE.match(value):
        return bool(SECRET_NAME_RE.search(name)) and len(value) >= 32 and entropy(value) >= 3.0
    core = value.rstrip("=")
    if not (re.search(r"[0-9]", core) and re.search(r"[A-Z]", core) and re.search(r"[a-z]", core)):
        return False
    if re.fullmatch(r"[A-Za-z0-9_]+(?:[./][A-Za-z0-9_]+){2,}", core) and not re.search(r"\d{2}", core):
        return False  # dotted/pathy identifiers: com.example.Service, a/b/c
    return entropy(core) >= base64_threshold(len(core))


def b64decode(value: str) -> bytes | None:
    padded = value + "=" * (-len(value) % 4)
    try:
        return base64.b64decode(padded, validate=False) if "-" not in value and "_" not in value else base64.urlsafe_b64decode(padded)
    except (binascii.Error, ValueError):
        return None


def basic_auth_pair(value: str) -> bool:
    """base64 of `user:password` (Docker config auths, HTTP Basic)."""
    decoded = b64decode(value)
    if not decoded:
        return False
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        return False
    user, sep, password = text.partition(":")
    return bool(sep and user and password and text.isprintable())


def jwt_header(value: str) -> bool:
    decoded = b64decode(value.split(".", 1)[0])
    try:
        header = json.loads(decoded or b"")
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(header, dict) and "alg" in header


def pem_body(value: str) -> bool:
    """A real key block has a body, not just the BEGIN line of a how-to."""
    body = re.sub(r"(\\n|\\r|\s|[A-Za-z-]+:[^\n\\]*)", "", value)
    return len(re.findall(r"[A-Za-z0-9+/=]", body)) >= 64
