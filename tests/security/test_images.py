"""Image checks on real tar streams built here: a `docker save` archive
(layers as tars inside the tar, config JSON, manifest.json) and a container
export (a flat filesystem), plus an Engine API image-inspect dict."""

import gzip
import io
import json
import tarfile

from apps.security import images
from apps.security.models import Finding
from apps.security.scanning import make_scanner

from .samples import ALNUM, Gen

g = Gen("images")
TOKEN = "ghp_" + g(ALNUM, 36)
DB_PASSWORD = g(ALNUM, 18)
STRIPE = "sk_live_" + g(ALNUM, 24)


def tar_bytes(files: dict[str, bytes], gz: bool = False, whiteouts=()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name in [*files, *whiteouts]:
            data = files.get(name, b"")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return gzip.compress(raw) if gz else raw


def docker_save(config: dict, tags: list[str]) -> bytes:
    layer1 = tar_bytes(
        {"etc/os-release": b"ID=busybox\n", "app/.env": f"STRIPE_KEY={STRIPE}\n".encode(), "bin/busybox": b"\x7fELF\x00\x01" * 100}
    )
    layer2 = tar_bytes({"app/main.py": b"print('hi')\n"}, gz=True, whiteouts=["app/.wh..env"])  # deletes .env in the top layer
    cfg = json.dumps(config).encode()
    manifest = json.dumps([{"Config": "abc123.json", "RepoTags": tags, "Layers": ["l1/layer.tar", "l2/layer.tar"]}]).encode()
    return tar_bytes({"l1/layer.tar": layer1, "l2/layer.tar": layer2, "abc123.json": cfg, "manifest.json": manifest})


SAVED_CONFIG = {
    "architecture": "amd64",
    "config": {
        "User": "",
        "Env": ["PATH=/usr/local/bin:/usr/bin", f"GITHUB_TOKEN={TOKEN}", f"DB_PASSWORD={DB_PASSWORD}", "LANG=C.UTF-8"],
        "Labels": {"maintainer": "ops@example.org", "org.opencontainers.image.version": "1.4"},
        "ExposedPorts": {"80/tcp": {}, "8080/tcp": {}},
        "Cmd": ["/app/run"],
    },
    "rootfs": {"type": "layers", "diff_ids": []},
}


def test_config_checks_on_an_engine_inspect_dict():
    scanner = make_scanner()
    bad = {
        "RepoTags": ["web:latest"],
        "Config": {
            "User": "0:0",
            "Env": [f"API_TOKEN={TOKEN}"],
            "Labels": {"db.password": "s3cr3t-value"},
            "ExposedPorts": {"443/tcp": {}, "53/udp": {}},
        },
    }
    rules = sorted(i.rule for i in images.check_config(bad, scanner))
    assert rules == [
        "image-latest-tag",
        "image-no-healthcheck",
        "image-privileged-port",
        "image-privileged-port",
        "image-runs-as-root",
        "image-secret-in-env",
        "image-secret-in-label",
    ]
    secret = next(i for i in images.check_config(bad, scanner) if i.rule == "image-secret-in-env")
    assert TOKEN not in secret.preview and "github" in secret.title.lower()
    good = {
        "RepoTags": ["registry.ops/web:1.4.2"],
        "Config": {
            "User": "app",
            "Env": ["PATH=/usr/bin", "TOKEN_FILE=/run/secrets/token"],
            "Healthcheck": {"Test": ["CMD", "/app/health"]},
            "ExposedPorts": {"8080/tcp": {}},
        },
    }
    assert images.check_config(good, scanner) == []
    assert [i.rule for i in images.check_config(good, scanner, reference="web@sha256:" + "a" * 64)] == []
    assert [i.rule for i in images.check_config(good, scanner, reference="web")] == ["image-latest-tag"]  # untagged = latest


def test_docker_save_stream_layers_and_config():
    result = images.scan_tar_stream(io.BytesIO(docker_save(SAVED_CONFIG, ["web:latest"])), make_scanner())
    assert result.reference == "web:latest"
    assert {(h.rule, h.path) for h in result.hits} == {("stripe-secret-key", "/app/.env")}  # deleted on top, still in the image
    assert result.skipped == {"binary": 1}
    config_rules = sorted(i.rule for i in result.config_issues)
    assert config_rules == [
        "image-latest-tag",
        "image-no-healthcheck",
        "image-privileged-port",
        "image-runs-as-root",
        "image-secret-in-env",
        "image-secret-in-env",
    ]


def test_container_export_stream():
    export = tar_bytes(
        {
            "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n",
            "srv/app/config.yml": f"db:\n  password: {DB_PASSWORD}\n".encode(),
            "usr/lib/libc.so": b"\x00" * 64,
        }
    )
    result = images.scan_tar_stream(io.BytesIO(gzip.compress(export)), make_scanner(), reference="web:1.0")
    assert [(h.rule, h.path, h.line) for h in result.hits] == [("generic-password-config", "/srv/app/config.yml", 2)]
    assert result.config is None and result.config_issues == []


def test_scan_image_operation_records_findings_without_secrets(make_user, run_scan, stage):
    user = make_user("operator")
    staged = stage(user, "web.tar", docker_save(SAVED_CONFIG, ["web:latest"]))
    job, scan = run_scan(user, "security.scan_image", {"staged": staged, "reference": "web:latest"})
    assert job.status == "succeeded", job.error
    assert scan.target == "image:web:latest"
    findings = Finding.objects.filter(target=scan.target)
    assert {f.rule for f in findings} >= {"image-runs-as-root", "image-latest-tag", "image-secret-in-env", "stripe-secret-key"}
    for f in findings:
        for secret in (TOKEN, DB_PASSWORD, STRIPE):
            assert secret not in f.preview and secret not in f.detail and secret not in f.title
