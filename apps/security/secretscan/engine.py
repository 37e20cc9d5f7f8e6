"""The secret scanner: keyword prefilter, then the matching rules' regexes over
windows of a stream, so a file is never read whole.

Windows are WINDOW bytes plus OVERLAP of look-ahead (longer than any match)
and LEFT bytes of context kept from the previous window (so look-behinds and
names before `=` still work). A match is taken from the window in which it
starts; each is reported once.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

import re2

from . import checks
from .generic import GENERIC_RULES
from .rules import CRITICAL, LOW, MAX_MATCH, PROVIDER_RULES, Rule

ALL_RULES: list[Rule] = PROVIDER_RULES + GENERIC_RULES
IGNORE_MARKERS = (b"secret-scan:ignore", b"pragma: allowlist secret", b"gitleaks:allow")
SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".tox", "site-packages", ".mypy_cache", ".pytest_cache"}
LOCKFILES = {
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "poetry.lock",
    "pipfile.lock",
    "uv.lock",
    "cargo.lock",
    "go.sum",
    "composer.lock",
}
BINARY_SUFFIXES = (
    ".png", ".jpg", ".jpeg", ".gif", ".ico", ".webp", ".bmp", ".pdf", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".jar", ".war",
    ".whl", ".so", ".dll", ".dylib", ".exe", ".bin", ".o", ".a", ".pyc", ".class", ".woff", ".woff2", ".ttf", ".otf", ".eot",
    ".mp3", ".mp4", ".mov", ".avi", ".wasm", ".sqlite", ".db",
)  # fmt: skip
GENERATED_SUFFIXES = (".min.js", ".min.css", ".map", ".bundle.js")
NAME_BEFORE = re.compile(rb"""([\w.\-]{1,80})["']?[ \t]{0,5}(?:=|:=|:|=>)[ \t]{0,5}[bruBRUf]{0,2}["'`]?$""")
AWS_PAIR_SECRET = re.compile(rb"(?<![A-Za-z0-9/+=])([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])")


@dataclass(frozen=True)
class SecretHit:
    """One secret found: where, which rule, a masked preview and a keyed hash — never the secret."""

    rule: str
    title: str
    severity: str
    path: str
    line: int
    preview: str
    fingerprint: str
    example: bool = False


@dataclass(frozen=True)
class Policy:
    """What not to report: allow-listed paths (globs) and secrets (regexes), and a baseline."""

    allow_paths: tuple[str, ...] = ()
    allow_patterns: tuple[str, ...] = ()
    baseline: frozenset[tuple[str, str]] = frozenset()  # (path, fingerprint)
    live: frozenset[str] = frozenset()  # fingerprints verified live: critical, and never silenced by the baseline
    compiled: tuple[re.Pattern, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "compiled", tuple(re.compile(p) for p in self.allow_patterns))

    def path_allowed(self, path: str) -> bool:
        return any(fnmatch.fnmatch(path, pattern) for pattern in self.allow_paths)


def mask(secret: str, reveal: bool = True) -> str:
    """What a person may see of a secret: at most its first 4 characters, for long provider tokens."""
    shown = secret[:4] if reveal and len(secret) >= 20 else ""
    return f"{shown}{'*' * 8}"


@dataclass
class _Candidate:
    rule: Rule
    start: int
    end: int
    s_start: int
    s_end: int
    secret: str


class SecretScanner:
    WINDOW = 1 << 20
    OVERLAP = MAX_MATCH + 4096
    LEFT = 512

    def __init__(self, key: bytes, rules: Iterable[Rule] = ALL_RULES, policy: Policy | None = None, max_file_bytes: int = 5 << 20):
        self.key = key
        self.rules = list(rules)
        self.policy = policy or Policy()
        self.max_file_bytes = max_file_bytes
        # One RE2 set of every keyword, case-insensitive: a single linear pass tells
        # which keywords a window holds (about 300 MB/s, whatever their number).
        options = re2.Options()
        options.case_sensitive = False
        self._keywords = re2.Set.SearchSet(options)
        self._keyword_rules: list[list[Rule]] = []
        index: dict[str, int] = {}
        for rule in self.rules:
            for keyword in rule.keywords:
                if keyword not in index:
                    index[keyword] = self._keywords.Add(re2.escape(keyword))
                    self._keyword_rules.append([])
                self._keyword_rules[index[keyword]].append(rule)
        if index:
            self._keywords.Compile()
        self._always = [r for r in self.rules if not r.keywords]
        # A generic value that starts like a provider's token ("dop_v1_c104") but that provider's rule did not
        # match is a truncated or made-up one: the provider rule decides.
        self._provider_prefixes = tuple(sorted({k for r in self.rules if not r.generic for k in r.keywords if len(k) >= 4}))

    # --- what to read at all -------------------------------------------------------
    def skip_reason(self, path: str, size: int | None = None) -> str | None:
        parts = path.split("/")
        name = parts[-1].lower()
        if any(part in SKIP_DIRS for part in parts[:-1]):
            return "dependency or tooling directory"
        if self.policy.path_allowed(path):
            return "allow-listed path"
        if name in LOCKFILES:
            return "lockfile"
        if name.endswith(BINARY_SUFFIXES):
            return "binary"
        if name.endswith(GENERATED_SUFFIXES):
            return "minified or generated"
        if size is not None and size > self.max_file_bytes:
            return f"larger than {self.max_file_bytes >> 20} MB"
        return None

    def fingerprint(self, rule_id: str, secret: str) -> str:
        return hmac.new(self.key, f"{rule_id}\0{secret}".encode(), hashlib.sha256).hexdigest()

    # --- scanning ----------------------------------------------------------------
    def scan_bytes(self, path: str, data: bytes) -> list[SecretHit]:
        return self.scan_stream(path, io.BytesIO(data)) or []

    def scan_stream(self, path: str, stream: BinaryIO) -> list[SecretHit] | None:
        """Hits in one file read from `stream`; None when the content is binary."""
        hits: list[SecretHit] = []
        pending, lines_before, accept_from, first = b"", 0, 0, True
        while True:
            chunk = stream.read(self.WINDOW)
            if first and b"\x00" in chunk[:8192]:
                return None
            first = False
            buf = pending + chunk
            eof = len(chunk) < self.WINDOW
            accept_to = len(buf) if eof else max(accept_from, len(buf) - self.OVERLAP)
            if accept_to > accept_from:
                hits.extend(self._scan_window(path, buf, accept_from, accept_to, lines_before))
            if eof:
                return hits
            keep_from = max(0, accept_to - self.LEFT)
            lines_before += buf.count(b"\n", 0, keep_from)
            pending, accept_from = buf[keep_from:], accept_to - keep_from

    def secrets(self, path: str, data: bytes) -> list[tuple[str, str, str]]:
        """(rule, fingerprint, secret) of each secret in a file, for live verification only: the caller keeps them in memory."""
        return [(c.rule.id, self.fingerprint(c.rule.id, c.secret), c.secret) for c in self._candidates(path, data, 0, len(data))]

    def _active_rules(self, buf: bytes) -> list[Rule]:
        active, seen = list(self._always), set()
        for i in (self._keywords.Match(buf) or ()) if self._keyword_rules else ():
            for rule in self._keyword_rules[i]:
                if rule.id not in seen:
                    seen.add(rule.id)
                    active.append(rule)
        return active

    def _candidates(self, path: str, buf: bytes, accept_from: int, accept_to: int) -> list[_Candidate]:
        found = []
        for rule in self._active_rules(buf):
            if (rule.paths is not None and not rule.paths(path)) or (rule.required is not None and not rule.required.search(buf)):
                continue
            for m in rule.regex.finditer(buf, accept_from):
                if m.start() >= accept_to:
                    break
                if not rule.bounded_at(buf, m.start(), m.end()) or (
                    rule.generic and rule.name_group and not _key_starts_cleanly(buf, m.start())
                ):
                    continue
                group = rule.secret_group if rule.secret_group and m.start(rule.secret_group) >= 0 else 0
                s_start, s_end = m.start(group), m.end(group)
                # cheapest first: most generic matches in code are names, references or parts of longer strings
                if rule.generic and not (
                    _quotes_match(buf, s_start, s_end) and not _reference_in_code(path, buf, m.start(), s_start, s_end)
                ):
                    continue
                secret = m.group(group).decode("utf-8", "replace")
                if rule.generic and (secret.lower().startswith(self._provider_prefixes) or (not rule.name_group and not _mixed(secret))):
                    continue
                name = m.group(rule.name_group).decode("utf-8", "replace") if rule.name_group else self._name_before(buf, m.start())
                if rule.generic and not name:
                    continue  # a generic value is assigned to a key of its own
                if rule.check is not None and not rule.check(secret, name, path):
                    continue
                if any(p.search(secret) for p in self.policy.compiled):
                    continue
                found.append(_Candidate(rule, m.start(), m.end(), s_start, s_end, secret))
        found.extend(self._aws_pairs(buf, found))
        return _without_overlaps(found)

    @staticmethod
    def _name_before(buf: bytes, start: int) -> str:
        """The key a value is assigned to; "" when there is none of its own (`arn:aws:...:gateway/x` has no key)."""
        line_start = buf.rfind(b"\n", max(0, start - 120), start) + 1
        m = NAME_BEFORE.search(buf, line_start if line_start else max(0, start - 120), start + 1)
        if not m or not _key_starts_cleanly(buf, m.start(1)):
            return ""
        return m.group(1).decode("utf-8", "replace")

    def _aws_pairs(self, buf: bytes, found: list[_Candidate]) -> list[_Candidate]:
        """A bare 40-character secret within five lines of an access key ID is its secret key."""
        pairs = []
        known = {(c.s_start, c.s_end) for c in found}
        for key in [c for c in found if c.rule.id == "aws-access-key-id"]:
            lo = hi = key.start
            for _ in range(6):
                lo = max(0, buf.rfind(b"\n", 0, max(lo - 1, 0)))
                nxt = buf.find(b"\n", hi + 1)
                hi = len(buf) if nxt < 0 else nxt
            for m in AWS_PAIR_SECRET.finditer(buf, lo, hi):
                secret = m.group(1).decode()
                if (m.start(1), m.end(1)) not in known and checks.high_entropy(secret, "aws_secret_access_key"):
                    rule = next(r for r in PROVIDER_RULES if r.id == "aws-secret-access-key")
                    pairs.append(_Candidate(rule, m.start(1), m.end(1), m.start(1), m.end(1), secret))
        return pairs

    def _scan_window(self, path: str, buf: bytes, accept_from: int, accept_to: int, lines_before: int) -> list[SecretHit]:
        candidates = self._candidates(path, buf, accept_from, accept_to)
        # Confidence: a keyword or entropy hit in documentation is an example; in tests it is a low one.
        documentation, tests = checks.example_path(path), checks.test_path(path)
        hits, line, counted_to = [], lines_before + 1, 0
        for c in sorted(candidates, key=lambda c: c.start):
            line += buf.count(b"\n", counted_to, c.start)
            counted_to = c.start
            ls = buf.rfind(b"\n", 0, c.start) + 1
            le = buf.find(b"\n", c.start)
            le = len(buf) if le < 0 else le
            text = buf[ls:le]
            if any(marker in text for marker in IGNORE_MARKERS):
                continue
            fingerprint = self.fingerprint(c.rule.id, c.secret)
            live = fingerprint in self.policy.live
            if (path, fingerprint) in self.policy.baseline and not live:
                continue
            preview = _preview(buf, ls, le, c, candidates)
            example = checks.is_placeholder(c.secret) or (c.rule.example is not None and c.rule.example(c.secret, buf[c.start : c.end]))
            example = example or (c.rule.generic and (documentation or checks.says_what_it_is(c.secret)))
            severity = "info" if example else (LOW if c.rule.generic and tests else c.rule.severity)
            example, severity = (False, CRITICAL) if live else (example, severity)
            hits.append(SecretHit(c.rule.id, c.rule.title, severity, path, line, preview, fingerprint, example))
        return hits


KEY_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
KEY_BOUNDARY = frozenset(b" \t\r\n\"'`{(,;[$")


def _key_starts_cleanly(buf: bytes, start: int) -> bool:
    """The assigned name is a key of its own (`db_password:`), not part of a value (`registry/password_hint:1`)."""
    i = start
    while i > 0 and buf[i - 1] in KEY_CHARS and start - i < 60:
        i -= 1
    return i == 0 or buf[i - 1] in KEY_BOUNDARY


QUOTES = frozenset(b"\"'`")
HEX_OR_MIXED = re.compile(r"[0-9a-fA-F]+|.*\d.*", re.S)


def _mixed(value: str) -> bool:
    """What the entropy rule can report at all: hex, or a value with a digit (checks.high_entropy decides)."""
    return bool(HEX_OR_MIXED.fullmatch(value))


def _quotes_match(buf: bytes, start: int, end: int) -> bool:
    """`'abc'` or an unquoted abc, not `'abc"` (the value is part of a longer string)."""
    before = buf[start - 1] if start > 0 else 0
    after = buf[end] if end < len(buf) else 0
    return (before not in QUOTES and after not in QUOTES) or before == after


CODE_SUFFIXES = (
    ".py",
    ".js",
    ".mjs",
    ".cjs",
    ".ts",
    ".tsx",
    ".jsx",
    ".go",
    ".java",
    ".kt",
    ".rb",
    ".php",
    ".cs",
    ".rs",
    ".c",
    ".h",
    ".cpp",
    ".swift",
)
BARE_IDENTIFIER = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")


def _reference_in_code(path: str, buf: bytes, op: int, start: int, end: int) -> bool:
    """`x = SomeName` or `# Note: X509_STORE_get1_chain` in code: an unquoted identifier is a name, not a value."""
    if not path.endswith(CODE_SUFFIXES) or buf[start - 1 : start] in (b'"', b"'", b"`") or not BARE_IDENTIFIER.fullmatch(buf, start, end):
        return False
    return buf[op : op + 1] == b"=" or b"_" in buf[start:end]


def _without_overlaps(found: list[_Candidate]) -> list[_Candidate]:
    """Where matches overlap, the more specific rule wins (then the earlier, longer match)."""
    kept: list[_Candidate] = []
    for c in sorted(found, key=lambda c: (-c.rule.priority, c.s_start, -(c.s_end - c.s_start))):
        if all(c.s_end <= k.s_start or c.s_start >= k.s_end for k in kept):
            kept.append(c)
    return kept


def _preview(buf: bytes, ls: int, le: int, hit: _Candidate, candidates: list[_Candidate]) -> str:
    """The hit's line around the secret, with every secret on that line masked."""
    pieces, pos = [], ls
    for c in sorted((c for c in candidates if c.s_start < le and c.s_end > ls), key=lambda c: c.s_start):
        start = max(c.s_start, pos)
        pieces.append(buf[pos:start].decode("utf-8", "replace"))
        pieces.append(mask(c.secret, reveal=not c.rule.generic))
        pos = max(pos, min(c.s_end, le))
    pieces.append(buf[pos:le].decode("utf-8", "replace"))
    if hit.s_start >= le:  # a block whose secret starts on the next line (private keys)
        pieces.append(" " + mask(hit.secret, reveal=False))
    text = "".join(pieces).strip()
    if len(text) > 200:
        anchor = text.find("********")
        start = max(0, anchor - 90)
        text = ("…" if start else "") + text[start : start + 190] + "…"
    return text
