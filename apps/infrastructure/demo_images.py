"""Images the demo (and the tests) build locally, with no registry: busybox-static
in a FROM scratch context, then one small web image per version, each serving
its version at /version with busybox httpd.

The demo must deploy, canary and roll back on a machine with no internet, so it
never pulls: every image it names is built here on the demo engine.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

from .client import API_VERSION, Engine

APPLETS = ["sh", "nc", "cat", "httpd", "sleep", "echo", "true", "false", "ls", "df", "uptime", "wget"]
BASE = "localhost/opsconsole-demo/busybox:1"
WEB = "localhost/opsconsole-demo/web"
# v3 answers /version but its /cgi-bin/health fails: the demo's rollback.
UNHEALTHY = """#!/bin/sh
printf 'Status: 500 Failing\\r\\n\\r\\nfailing\\n'
"""
HEALTHY = """#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\nok\\n'
"""
VERSIONS = {"v1": HEALTHY, "v2": HEALTHY, "v3": UNHEALTHY}
HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]


def busybox_context(files: dict[str, bytes], dockerfile: str) -> io.BytesIO:
    """A build context (tar) with `files`, the Dockerfile, a /tmp and busybox applet links."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in {**files, "Dockerfile": dockerfile.encode()}.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755 if "bin/" in name else 0o644
            tar.addfile(info, io.BytesIO(data))
        tmp = tarfile.TarInfo("tmp")
        tmp.type, tmp.mode = tarfile.DIRTYPE, 0o1777
        tar.addfile(tmp)
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    buffer.seek(0)
    return buffer


def web_files(version: str, health: str) -> dict[str, bytes]:
    page = f"<!doctype html><title>demo web {version}</title><h1>demo web {version}</h1>\n"
    return {"www/version": f"{version}\n".encode(), "www/index.html": page.encode(), "www/cgi-bin/health": health.encode()}


def build_demo_images(environment, busybox: str) -> list[str]:
    """Build the demo's base and web images on the environment's engine; returns their tags."""
    labels = {"opsconsole.demo": "1"}
    with Engine(environment) as engine:
        _drain(
            engine.build(
                tag=BASE,
                labels=labels,
                fileobj=busybox_context({"bin/busybox": Path(busybox).read_bytes()}, "FROM scratch\nCOPY bin /bin\n"),
            )
        )
        tags = [BASE]
        for version, health in VERSIONS.items():
            tag = f"{WEB}:{version}"
            _drain(
                engine.build(
                    tag=tag,
                    labels=labels,
                    fileobj=busybox_context(web_files(version, health), f"FROM {BASE}\nCOPY www /www\nCOPY tmp /tmp\n"),
                )
            )
            tags.append(tag)
    return tags


def _drain(progress) -> None:
    for message in progress:
        if "error" in message:
            raise RuntimeError(f"demo image build failed: {message['error']}")


class TemporaryPodman:
    """podman's service on the demo socket while seed_demo builds, when bin/console has not started it yet."""

    def __init__(self, url: str):
        self.url = url
        self.process: subprocess.Popen | None = None

    def _answers(self) -> bool:
        try:
            return docker.DockerClient(base_url=self.url, timeout=5, version=API_VERSION).ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return False

    def __enter__(self) -> TemporaryPodman:
        if self._answers() or not shutil.which("podman") or not self.url.startswith("unix://"):
            return self
        Path(self.url.removeprefix("unix://")).unlink(missing_ok=True)
        self.process = subprocess.Popen(
            ["podman", "system", "service", "--time=0", self.url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("podman's service did not start for the demo images")
            time.sleep(0.2)
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
