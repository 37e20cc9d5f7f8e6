"""Every blob reachable from a repository's refs, each read once, through git
itself: `git rev-list --objects --all` names them, `git cat-file --batch-check`
keeps the blobs of a sane size, `git cat-file --batch` streams their content.

Git runs with hooks and fsmonitor disabled and with the repository marked safe
for this command only; it never checks anything out.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import ScanError

TIMEOUT = 600


@dataclass(frozen=True)
class Blob:
    sha: str
    path: str
    size: int


def _git(repo: Path) -> list[str]:
    return ["git", "-c", f"safe.directory={repo}", "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "-C", str(repo)]


def _run(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run([*_git(repo), *args], input=stdin, capture_output=True, timeout=TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ScanError(f"git failed on {repo}: {exc}") from None
    if done.returncode != 0:
        raise ScanError(f"git {args[0]} failed on {repo}: {done.stderr.decode(errors='replace').strip()[:300]}")
    return done.stdout


def is_repository(path: Path) -> bool:
    done = subprocess.run([*_git(path), "rev-parse", "--git-dir"], capture_output=True, timeout=30, check=False)
    return done.returncode == 0


def blobs(repo: Path, max_size: int) -> tuple[list[Blob], int]:
    """The blobs to scan (first path each was seen at) and how many were too large."""
    if not is_repository(repo):
        raise ScanError(f"{repo.name} is not a git repository: untick 'history' or point at the repository's directory.")
    paths: dict[str, str] = {}
    for line in _run(repo, "rev-list", "--objects", "--all").decode("utf-8", "replace").splitlines():
        sha, _, path = line.partition(" ")
        paths.setdefault(sha, path)
    if not paths:
        return [], 0
    checked = _run(repo, "cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)", stdin="\n".join(paths).encode() + b"\n")
    result, too_large = [], 0
    for line in checked.decode().splitlines():
        sha, kind, size = line.split(" ")
        if kind != "blob":
            continue
        if int(size) > max_size:
            too_large += 1
            continue
        result.append(Blob(sha, paths[sha], int(size)))
    return result, too_large


def contents(repo: Path, wanted: list[Blob]) -> Iterator[tuple[Blob, bytes]]:
    """Stream the blobs' content from one `git cat-file --batch` process."""
    proc = subprocess.Popen([*_git(repo), "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def feed():
        try:
            for blob in wanted:
                proc.stdin.write(blob.sha.encode() + b"\n")
        finally:
            proc.stdin.close()

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        for blob in wanted:
            header = proc.stdout.readline().split()
            if len(header) != 3:
                raise ScanError(f"git cat-file answered {header!r} for {blob.sha}.")
            data = proc.stdout.read(int(header[2]))
            proc.stdout.read(1)  # the newline after each object
            yield blob, data
    finally:
        proc.stdout.close()
        proc.kill() if proc.poll() is None else None
        proc.wait(timeout=30)
        writer.join(timeout=5)


def first_commit(repo: Path, blob_sha: str) -> str:
    """The oldest commit that introduced the blob (where the secret entered the history)."""
    out = _run(repo, "log", "--all", "--format=%H", "--reverse", f"--find-object={blob_sha}")
    lines = out.decode().split()
    return lines[0] if lines else ""
