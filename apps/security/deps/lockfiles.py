"""Lockfile parsers: the exact versions a project installs.

Python: pinned `requirements*.txt`, `poetry.lock`, `pdm.lock`, `Pipfile.lock`, `uv.lock`.
npm: `package-lock.json` / `npm-shrinkwrap.json` (v1, v2, v3), `yarn.lock`
(classic v1 and Berry) and `pnpm-lock.yaml` (v5, v6, v9). Each parser takes the
file's text and returns the dependencies plus notes about what it could not pin.
Lockfiles of other ecosystems are recognised (`unread_ecosystem`) so that a scan
names every one it did not read.
"""

from __future__ import annotations

import json
import posixpath
import re
import tomllib
from dataclasses import dataclass

import yaml
from packaging.requirements import InvalidRequirement, Requirement

from .semver import InvalidSemver, Semver

PYPI, NPM = "PyPI", "npm"


@dataclass(frozen=True)
class Dependency:
    ecosystem: str
    name: str
    version: str
    manifest: str  # the lockfile it came from, relative to the scanned tree


@dataclass
class Parsed:
    dependencies: list[Dependency]
    notes: list[str]


class LockfileError(ValueError):
    pass


def kind_of(path: str) -> str | None:
    """Which parser reads this file, by its name; None for other files."""
    name = posixpath.basename(path).lower()
    if name.startswith("requirements") and name.endswith(".txt"):
        return "requirements"
    return {
        "poetry.lock": "poetry",
        "pdm.lock": "poetry",  # the same [[package]] name/version tables
        "pnpm-lock.yaml": "pnpm",
        "pipfile.lock": "pipfile",
        "uv.lock": "uv",
        "package-lock.json": "npm",
        "npm-shrinkwrap.json": "npm",
        "yarn.lock": "yarn",
    }.get(name)


ECOSYSTEM_OF_KIND = {"requirements": PYPI, "poetry": PYPI, "pipfile": PYPI, "uv": PYPI, "npm": NPM, "yarn": NPM, "pnpm": NPM}
UNREAD = {
    "cargo.lock": "crates.io",
    "go.sum": "Go",
    "gemfile.lock": "RubyGems",
    "composer.lock": "Packagist",
    "packages.lock.json": "NuGet",
    "gradle.lockfile": "Maven",
    "mix.lock": "Hex",
    "pubspec.lock": "Pub",
    "podfile.lock": "CocoaPods",
    "package.resolved": "SwiftURL",
    "bun.lockb": "npm (bun's binary lockfile)",
    "bun.lock": "npm (bun)",
    "conan.lock": "ConanCenter",
}


def ecosystem_of_manifest(path: str) -> str:
    kind = kind_of(path)
    return ECOSYSTEM_OF_KIND[kind] if kind else ""


def unread_ecosystem(path: str) -> str | None:
    """The ecosystem of a lockfile this audit recognises but does not read."""
    return UNREAD.get(posixpath.basename(path).lower())


def parse(path: str, text: str) -> Parsed:
    kind = kind_of(path)
    if kind is None:
        raise LockfileError(f"{path} is not a lockfile this scanner reads.")
    try:
        return PARSERS[kind](path, text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise LockfileError(f"{path} could not be parsed as a {kind} lockfile: {exc}") from None


def requirements(path: str, text: str) -> Parsed:
    deps, notes = [], []
    logical = re.sub(r"\\\r?\n", " ", text)
    for raw in logical.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line or line.startswith("-"):
            if line.startswith(("-r", "--requirement", "-c", "--constraint", "-e", "--editable")):
                notes.append(f"{path}: '{line[:80]}' not followed (only pinned requirements in this file are checked)")
            continue
        line = re.sub(r"\s--?[a-z\-]+(?:[= ]\S+)?", "", line)  # --hash=..., options after a requirement
        try:
            req = Requirement(line)
        except InvalidRequirement:
            notes.append(f"{path}: could not parse '{line[:80]}'")
            continue
        pins = [s for s in req.specifier if s.operator in ("==", "===") and "*" not in s.version]
        if req.url or len(pins) != 1:
            notes.append(f"{path}: {req.name} is not pinned to one version (use a lockfile or ==): not checked")
            continue
        deps.append(Dependency(PYPI, req.name, pins[0].version, path))
    return Parsed(deps, notes)


def poetry(path: str, text: str) -> Parsed:
    data = tomllib.loads(text)
    return Parsed([Dependency(PYPI, p["name"], str(p["version"]), path) for p in data.get("package", [])], [])


def uv(path: str, text: str) -> Parsed:
    data = tomllib.loads(text)
    deps = []
    for p in data.get("package", []):
        source = p.get("source", {})
        if "editable" in source or "virtual" in source or "version" not in p:
            continue  # the project itself or a workspace member
        deps.append(Dependency(PYPI, p["name"], str(p["version"]), path))
    return Parsed(deps, [])


def pipfile(path: str, text: str) -> Parsed:
    data = json.loads(text)
    deps, notes = [], []
    for section in ("default", "develop"):
        for name, spec in (data.get(section) or {}).items():
            version = (spec or {}).get("version", "")
            if version.startswith("=="):
                deps.append(Dependency(PYPI, name, version[2:], path))
            else:
                notes.append(f"{path}: {name} has no pinned version (VCS or path dependency): not checked")
    return Parsed(deps, notes)


def npm(path: str, text: str) -> Parsed:
    data = json.loads(text)
    deps: dict[tuple[str, str], Dependency] = {}
    packages = data.get("packages")
    if packages:  # lockfileVersion 2 and 3
        for key, entry in packages.items():
            if not key or entry.get("link") or "version" not in entry or "node_modules/" not in key:
                continue
            name = entry.get("name") or key.rsplit("node_modules/", 1)[1]
            deps.setdefault((name, entry["version"]), Dependency(NPM, name, entry["version"], path))
    else:  # lockfileVersion 1: nested "dependencies"
        stack = [data.get("dependencies") or {}]
        while stack:
            for name, entry in stack.pop().items():
                version = entry.get("version", "")
                if version and not version.startswith(("file:", "link:", "git", "http")):
                    deps.setdefault((name, version), Dependency(NPM, name, version, path))
                stack.append(entry.get("dependencies") or {})
    return Parsed(list(deps.values()), [])


_YARN_KEY = re.compile(r"^(?P<key>[^\s#].*):\s*$")
_YARN_VERSION = re.compile(r'^\s+version:?\s+"?(?P<version>[^"\s]+)"?\s*$')


def _yarn_name(descriptor: str) -> str:
    descriptor = descriptor.strip().strip('"')
    at = descriptor.find("@", 1)  # scoped names start with "@"
    return descriptor[:at] if at > 0 else descriptor


def yarn(path: str, text: str) -> Parsed:
    deps: dict[tuple[str, str], Dependency] = {}
    name = None
    for line in text.splitlines():
        key = _YARN_KEY.match(line)
        if key:
            first = key.group("key").split(",")[0]
            name = None if first.strip('"').startswith("__metadata") else _yarn_name(first)
            if (name and "@workspace:" in first) or (name and "@link:" in first):
                name = None
            continue
        version = _YARN_VERSION.match(line)
        if version and name:
            v = version.group("version")
            deps.setdefault((name, v), Dependency(NPM, name, v, path))
            name = None
    return Parsed(list(deps.values()), [])


def _pnpm_key(key: str, v5: bool) -> tuple[str, str]:
    """(name, version) of a pnpm `packages` key: `/name/1.0.0_peer@2` (v5), `/name@1.0.0(peer@2)` (v6), `name@1.0.0` (v9)."""
    key = key.lstrip("/")
    key = key.split("(", 1)[0]
    if v5:
        name, _, version = key.rpartition("/")
        return name, version.split("_", 1)[0]
    name, _, version = key.rpartition("@")
    return name, version


def pnpm(path: str, text: str) -> Parsed:
    data = yaml.safe_load(text) or {}
    v5 = str(data.get("lockfileVersion", "")).startswith("5")
    deps: dict[tuple[str, str], Dependency] = {}
    notes = []
    for key, entry in (data.get("packages") or {}).items():
        name, version = _pnpm_key(str(key), v5)
        entry = entry or {}
        name, version = entry.get("name") or name, str(entry.get("version") or version)
        try:
            Semver(version)
        except InvalidSemver:
            notes.append(f"{path}: {name or key} comes from {version or key} (not the registry): not checked")
            continue
        if name:
            deps.setdefault((name, version), Dependency(NPM, name, version, path))
    return Parsed(list(deps.values()), notes)


PARSERS = {"requirements": requirements, "poetry": poetry, "pipfile": pipfile, "uv": uv, "npm": npm, "yarn": yarn, "pnpm": pnpm}
