"""Semantic Versioning 2.0.0 ordering, as OSV's SEMVER ranges and npm use it.

Written here (about fifty lines) rather than taken from PyPI: the `semver`
package would do, but OSV needs only parsing and precedence, and npm's
lockfiles hold exact versions (no range expressions to evaluate).
Precedence (semver.org, section 11): major, minor, patch numerically; a
pre-release sorts before its release; pre-release identifiers compare
numerically when both are numeric, numeric ones lower than alphanumeric
ones, otherwise as ASCII; a longer list wins when all before are equal;
build metadata is ignored. A leading "v" and a missing minor/patch (OSV's
"0") are accepted.
"""

from __future__ import annotations

import functools
import re

_SEMVER = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)(?:\.(?P<minor>0|[1-9]\d*))?(?:\.(?P<patch>0|[1-9]\d*))?"
    r"(?:-(?P<pre>[0-9A-Za-z\-]+(?:\.[0-9A-Za-z\-]+)*))?(?:\+(?P<build>[0-9A-Za-z\-]+(?:\.[0-9A-Za-z\-]+)*))?$"
)


class InvalidSemver(ValueError):
    pass


@functools.total_ordering
class Semver:
    __slots__ = ("major", "minor", "patch", "pre", "text")

    def __init__(self, text: str):
        m = _SEMVER.match(text.strip())
        if not m:
            raise InvalidSemver(f"not a semantic version: {text!r}")
        self.text = text
        self.major, self.minor, self.patch = (int(m.group(g) or 0) for g in ("major", "minor", "patch"))
        self.pre = tuple(m.group("pre").split(".")) if m.group("pre") else ()

    def _key(self):
        return (self.major, self.minor, self.patch)

    def __eq__(self, other) -> bool:
        return isinstance(other, Semver) and self._key() == other._key() and self.pre == other.pre

    def __hash__(self) -> int:
        return hash((self._key(), self.pre))

    def __lt__(self, other: Semver) -> bool:
        if self._key() != other._key():
            return self._key() < other._key()
        if not self.pre or not other.pre:
            return bool(self.pre) and not other.pre  # a pre-release precedes its release
        for a, b in zip(self.pre, other.pre, strict=False):
            if a == b:
                continue
            a_num, b_num = a.isdigit(), b.isdigit()
            if a_num and b_num:
                return int(a) < int(b)
            if a_num != b_num:
                return a_num  # numeric identifiers have lower precedence
            return a < b
        return len(self.pre) < len(other.pre)

    def __repr__(self) -> str:
        return f"Semver({self.text!r})"
