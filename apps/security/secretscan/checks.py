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
TEMPLATE_MARKERS = ("${", "{{", "%(", "$(", "#{", "<", ">", "{%", "[[", "{")  # "{": f-strings and str.format fields
WEAK_EXAMPLES = {
    "password",
    "passwd",
    "secret",
    "pass",
    "admin",
    "root",
    "test",
    "user",
    "changeit",
    "letmein",
    "hunter2",
    "value",
    "foo",
    "bar",
}
_SEQUENCES = ("0123456789", "1234567890", "abcdefghij", "abcdef123456", "qwerty")
HEX_RE = re.compile(r"^[0-9a-fA-F]+$")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
HASH_NAME_RE = re.compile(r"(sha\d*|md5|digest|checksum|hash|etag|commit|revision|fingerprint|integrity|nonce|uuid|guid|_id$|^id$)", re.I)
SECRET_NAME_RE = re.compile(r"(secret|token|passw|pwd|api.?key|access.?key|private.?key|auth|credential|signing|salt|session)", re.I)
REFERENCE_RE = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+|[A-Z][A-Z0-9_]*|env\b.*|process\.env.*)$")
# Code, not data: a call, an index, a regex, an ARN or other colon-separated resource name.
CODE_RE = re.compile(r"^[\w.]+\(|\w\[|\(\?|\\[dswbDSWB]|\[\^?[\w\\]|^arn:|^[a-z][\w-]*:[\w-]*:")
WORDS_RE = re.compile(r"[a-z]+(?:[_\-.][a-z]+)+|[A-Z]*(?:[A-Z][a-z]+){2,}")
SEGMENT_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
# Credentials documentation uses: the SQLAlchemy tutorial's scott:tiger, RabbitMQ's guest:guest...
DOC_CREDENTIALS = {"tiger", "guest", "pass", "passw0rd", "pa55word", "s3cr3t", "secret123", "password123", "mypassword", "mysecretpassword"}
DOC_HOSTS = re.compile(
    r"(?i)^(?:localhost|127\.0\.0\.1|\[::1\]|host|hostname|server|db|database|example\.\w+|[\w.-]*\.example(?:\.\w+)?|[\w.-]*\.(?:test|invalid|local))(?::\d+)?$"
)


def entropy(text: str) -> float:
    if not text:
        return 0.0
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def base64_threshold(length: int) -> float:
    return min(4.25, math.log2(max(length, 2)) - 0.7)


def is_placeholder(value: str) -> bool:
    """Documentation values (AKIAIOSFODNN7EXAMPLE), templates (${X}) and dummies ("changeme")."""
    low = value.lower()
    if low in WEAK_EXAMPLES or low in DOC_CREDENTIALS or is_truncated(value):
        return True
    if any(word in low for word in PLACEHOLDER_WORDS) or any(seq in low for seq in _SEQUENCES):
        return True
    return len(set(low)) <= 3  # "aaaaaaaa", "x-x-x-x"


def says_what_it_is(value: str) -> bool:
    """A value that names itself ("test-password", "my-secret-value") is a stand-in for a generic rule's secret."""
    low = value.lower()
    return "password" in low or "passwd" in low or "secret" in low


def is_identifier(value: str) -> bool:
    """Words, not randomness: NextPageToken, page_token, V4_ASYMMETRIC, getUserAccountSettingsByIdentifier.

    Split into runs of one case or of digits, a name's pieces average 3+ characters; a random
    token's pieces average under 2 (its case and digits change every one or two characters)."""
    pieces = SEGMENT_RE.findall(value)
    if not pieces or looks_like_hash_or_uuid(value):
        return False
    if WORDS_RE.fullmatch(value):
        return True  # aws_access_key_id, AWSAccessKeyId: words joined, no digit
    # the 99.9th percentile of random alphanumerics: 4.0 up to 24 characters, 3.2 beyond
    return len("".join(pieces)) / len(pieces) >= (4.0 if len(value) < 24 else 3.2)


def encoded_text(value: str) -> bool:
    """base64 of readable text ("This is the way"), as documentation shows encodings: not a key."""
    if len(value) < 16 or not re.fullmatch(r"[A-Za-z0-9+/_\-]+={0,2}", value):
        return False
    decoded = b64decode(value)
    return bool(decoded) and sum(32 <= b < 127 or b in (9, 10, 13) for b in decoded) >= 0.95 * len(decoded)


EXAMPLE_PARTS = {"examples", "example", "docs", "doc", "samples", "sample", "fixtures", "testdata", "demo", "demos"}
TEST_PARTS = {"tests", "test", "spec", "specs", "__tests__", "testing"}


def example_path(path: str) -> bool:
    """Documentation and examples: README/METADATA, *.md/*.rst, docs/, examples/, *example*/*sample* files."""
    parts = path.lower().split("/")
    name = parts[-1]
    return (
        bool(EXAMPLE_PARTS & set(parts[:-1]))
        or name.endswith((".md", ".rst", ".adoc", ".ipynb"))
        or name in {"metadata", "pkg-info", "readme", "readme.txt", "changelog", "changes.txt"}
        or any(word in name for word in ("example", "sample", "fixture", "mock"))
    )


def test_path(path: str) -> bool:
    parts = path.lower().split("/")
    name = parts[-1]
    return bool(TEST_PARTS & set(parts[:-1])) or name.startswith("test_") or name.endswith(("_test.py", "_test.go", ".test.js", ".spec.js"))


def is_code(value: str) -> bool:
    """A call, an index, a regex or a resource name rather than a literal secret."""
    return bool(CODE_RE.search(value))


def is_truncated(value: str) -> bool:
    """Documentation shortens tokens: "eyJ2IjoiMSIsInMiOjEsImMiOi..."."""
    return value.endswith(("...", "…"))


def is_doc_credential(password: str, host: str = "") -> bool:
    """A password documentation uses, or one for a host that only exists in examples."""
    low = password.lower()
    return low in DOC_CREDENTIALS or low in WEAK_EXAMPLES or says_what_it_is(low) or bool(host and DOC_HOSTS.match(host))


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
    if is_identifier(core) or is_reference(core) or is_code(core) or digest_shaped(core, name) or encoded_text(value):
        return False
    return entropy(core) >= base64_threshold(len(core))


def digest_shaped(value: str, name: str = "") -> bool:
    """base64 of 16 or 20 bytes (MD5, SHA-1: ETags, WebSocket accept keys) under a name that does not say secret."""
    if SECRET_NAME_RE.search(name) or not re.fullmatch(r"[A-Za-z0-9+/]{22}(?:==)?|[A-Za-z0-9+/]{27}=?", value):
        return False
    decoded = b64decode(value)
    return decoded is not None and len(decoded) in (16, 20)


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
