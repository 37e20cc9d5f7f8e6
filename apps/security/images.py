"""Container image checks: the image's configuration (a dict as the Docker
Engine API's image inspect returns it, or the config JSON inside a
`docker save` archive) and its filesystem, read as a tar stream — the
engine's container export, or a `docker save` archive whose layers are
tars inside the tar. Nothing is unpacked to disk."""

from __future__ import annotations

import io
import json
import re
import tarfile
from dataclasses import dataclass, field
from typing import BinaryIO

from apps.core.redact import is_sensitive_name

from . import owasp
from .findings import Observation
from .secretscan import generic
from .secretscan.engine import SecretHit, SecretScanner, mask

MAX_JSON = 1 << 20
# `docker save` layouts: layers as <id>/layer.tar (docker < 25), <digest>.tar at the top (podman),
# blobs/sha256/<digest> (OCI, docker 25+); per-layer metadata and the legacy `repositories` file.
SAVE_LAYER = re.compile(r"^([0-9a-f]{64}\.tar|[^/]+/layer\.tar|blobs/.+)$")
SAVE_METADATA = re.compile(r"^(repositories|oci-layout|[0-9a-f]{64}/(json|VERSION))$")
SENSITIVE_ENV = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?)", re.I)


def _issue(rule, title, severity, category, detail, key, preview="", secret_hash="") -> Observation:
    """A config finding; `key` (the port, the ENV name...) is its identity within the image."""
    return Observation(
        kind="image",
        rule=rule,
        title=title,
        severity=severity,
        path="image config",
        owasp=category,
        detail=detail,
        identity=key,
        preview=preview,
        secret_hash=secret_hash,
        example=severity == "info",
    )


@dataclass
class ImageScan:
    reference: str = ""
    config: dict | None = None
    config_issues: list[Observation] = field(default_factory=list)
    hits: list[SecretHit] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


def _config_of(inspect: dict) -> dict:
    return inspect.get("Config") or inspect.get("config") or {}


def check_config(inspect: dict, scanner: SecretScanner, reference: str = "") -> list[Observation]:
    """Runs as root, mutable `latest` tag, secrets in ENV or labels, no healthcheck, privileged ports."""
    cfg = _config_of(inspect)
    tags = list(inspect.get("RepoTags") or [])
    ref = reference or (tags[0] if tags else "")
    issues = []
    user = (cfg.get("User") or "").strip()
    if user.split(":")[0] in ("", "root", "0"):
        issues.append(
            _issue(
                "image-runs-as-root",
                "Image runs as root",
                "high",
                owasp.A05,
                f"User is {user or 'unset (root)'}: a process escaping the app owns the container. Add a USER.",
                "user",
            )
        )
    refs = [r for r in [ref, *tags] if r]
    if not refs or any(_mutable(r) for r in refs):
        issues.append(
            _issue(
                "image-latest-tag",
                "Image referenced by the mutable 'latest' tag (or untagged)",
                "low",
                owasp.A08,
                "Deployments of 'latest' change under you; pin a version tag or a digest.",
                "tag",
            )
        )
    entries = [("Env", *e.split("=", 1)) for e in cfg.get("Env") or [] if "=" in e]
    entries += [("Label", k, str(v)) for k, v in (cfg.get("Labels") or {}).items()]
    for where, name, value in entries:
        issues.extend(_secret_in(scanner, where, name, value))
    health = cfg.get("Healthcheck") or {}
    if not health.get("Test") or health.get("Test") == ["NONE"]:
        issues.append(
            _issue(
                "image-no-healthcheck",
                "Image defines no HEALTHCHECK",
                "low",
                owasp.A05,
                "The engine cannot tell a hung service from a healthy one; add a HEALTHCHECK.",
                "healthcheck",
            )
        )
    for spec in sorted(cfg.get("ExposedPorts") or {}):
        port = int(spec.split("/")[0]) if spec.split("/")[0].isdigit() else 0
        if 0 < port < 1024:
            issues.append(
                _issue(
                    "image-privileged-port",
                    f"Image exposes privileged port {spec}",
                    "low",
                    owasp.A05,
                    "Binding below 1024 needs root or CAP_NET_BIND_SERVICE; listen on a high port and map it.",
                    f"port:{spec}",
                )
            )
    return issues


def _mutable(ref: str) -> bool:
    if "@sha256:" in ref:
        return False
    last = ref.rsplit("/", 1)[-1]
    return ":" not in last or last.endswith(":latest")


def _secret_in(scanner: SecretScanner, where: str, name: str, value: str) -> list[Observation]:
    hits = scanner.scan_bytes(".env", f"{name}={value}\n".encode())
    if hits:
        return [
            _issue(
                f"image-secret-in-{where.lower()}",
                f"Secret in image {where} {name}: {h.title}",
                "info" if h.example else "high",
                owasp.A07,
                f"{where} {name} holds a {h.title.lower()}; pass it at run time (secret store, mounted file).",
                f"{where}:{name}:{h.rule}",
                h.preview,
                h.fingerprint,
            )
            for h in hits
        ]
    if (SENSITIVE_ENV.search(name) or is_sensitive_name(name)) and value and generic.literal_value(value, name):
        return [
            _issue(
                f"image-secret-in-{where.lower()}",
                f"Secret-like value in image {where} {name}",
                "medium",
                owasp.A07,
                f"{where} {name} is baked into every copy of the image; pass it at run time.",
                f"{where}:{name}",
                f"{name}={mask(value, reveal=False)}",
                scanner.fingerprint("image-env", value),
            )
        ]
    return []


class _Prefixed(io.RawIOBase):
    """A stream that replays `head` then continues with `rest` (to sniff a tar member)."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self.head, self.rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n], self.head = self.head[:n], self.head[n:]
            return n
        data = self.rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def scan_tar_stream(stream: BinaryIO, scanner: SecretScanner, reference: str = "", tags: list[str] | None = None) -> ImageScan:
    """Secrets in an image filesystem streamed as a tar (export) or a `docker save` archive, plus its config checks.

    The config checks read the image's own config blob from the archive (what the engine's inspect renders,
    and more faithfully: podman 4's compat inspect drops Healthcheck). `tags`: the engine's tags of the image
    when it was exported by id (such an archive names none)."""
    result = ImageScan(reference=reference)
    jsons: dict[str, bytes] = {}
    with tarfile.open(fileobj=stream, mode="r|*") as outer:
        for member in outer:
            if not member.isfile():
                continue
            name = member.name.lstrip("./")
            f = outer.extractfile(member)
            head = f.read(512)
            # docker save metadata: top-level *.json (manifest, config) or OCI JSON blobs
            if ("/" not in name and name.endswith(".json")) or (name.startswith("blobs/") and head.lstrip().startswith(b"{")):
                if member.size <= MAX_JSON:
                    jsons[name] = head + f.read()
                continue
            if SAVE_METADATA.match(name):
                continue
            if SAVE_LAYER.match(name):
                _scan_layer(_Prefixed(head, f), scanner, result)
                continue
            _scan_member(f"/{name}", member.size, _Prefixed(head, f), scanner, result)
    result.config, saved_tags = _saved_config(jsons)
    tags = list(tags if tags is not None else saved_tags)
    if result.config is not None:
        inspect = {"Config": _config_of(result.config), "RepoTags": tags}
        result.reference = reference or (tags[0] if tags else "")
        result.config_issues = check_config(inspect, scanner, result.reference)
    return result


def _scan_layer(stream: BinaryIO, scanner, result: ImageScan) -> None:
    try:
        with tarfile.open(fileobj=io.BufferedReader(stream), mode="r|*") as inner:
            for member in inner:
                base = member.name.lstrip("./").rsplit("/", 1)[-1]
                if member.isfile() and not base.startswith(".wh."):
                    _scan_member(f"/{member.name.lstrip('./')}", member.size, inner.extractfile(member), scanner, result)
    except tarfile.TarError:
        result.skipped["unreadable layer"] = result.skipped.get("unreadable layer", 0) + 1


def _scan_member(path: str, size: int, f, scanner: SecretScanner, result: ImageScan) -> None:
    reason = scanner.skip_reason(path.lstrip("/"), size)
    if reason is None:
        hits = scanner.scan_stream(path, f)
        if hits is None:
            reason = "binary"
        else:
            result.hits.extend(hits)
            result.files += 1
            result.bytes += size
            return
    result.skipped[reason] = result.skipped.get(reason, 0) + 1


def _saved_config(jsons: dict[str, bytes]) -> tuple[dict | None, list[str]]:
    """The image config named by a `docker save` manifest.json, and its tags."""
    try:
        manifest = json.loads(jsons.get("manifest.json", b"null"))
    except ValueError:
        return None, []
    if not isinstance(manifest, list) or not manifest:
        return None, []
    entry = manifest[0]
    config_name = str(entry.get("Config", "")).lstrip("./")
    try:
        config = json.loads(jsons[config_name])
    except (KeyError, ValueError):
        return None, list(entry.get("RepoTags") or [])
    return config, list(entry.get("RepoTags") or [])
