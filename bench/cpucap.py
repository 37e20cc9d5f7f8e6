"""A fixed CPU budget for a process, as a container's `cpus:` limit gives it (a cgroup's CFS
quota): a bench uses it to show stateless scale-out on a machine whose few cores the clients and
the database use too. Uncapped, one web process already takes whatever core is idle, so a second
one has nothing to run on; capped, each process is a fixed slice of a machine, as each would be
on a host of its own, and N of them should serve N times the calls while the rest of the machine
keeps up. Needs a writable cgroup file system (root): v1's cpu controller or v2's cpu.max.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PERIOD_US = 100_000
V1 = Path("/sys/fs/cgroup/cpu")
V2 = Path("/sys/fs/cgroup")


def available() -> bool:
    """Whether this process may create capped cgroups."""
    if (V1 / "cpu.cfs_quota_us").exists():
        return os.access(V1, os.W_OK)
    return "cpu" in _read(V2 / "cgroup.controllers").split() and os.access(V2, os.W_OK)


class CpuCap:
    """One cgroup holding at most `cores` of CPU time; `add(pid)` moves a process (all its
    threads) into it; `close()` moves them back and removes it."""

    def __init__(self, name: str, cores: float):
        v1 = (V1 / "cpu.cfs_quota_us").exists()
        self.root = V1 if v1 else V2
        self.path = self.root / f"opsconsole-bench-{os.getpid()}-{name}"
        self.path.mkdir(exist_ok=True)
        quota = max(1000, int(cores * PERIOD_US))
        if v1:
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def close(self) -> None:
        for pid in _read(self.path / "cgroup.procs").split():
            with contextlib.suppress(OSError):  # it may have ended meanwhile
                (self.root / "cgroup.procs").write_text(pid)
        with contextlib.suppress(OSError):
            self.path.rmdir()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
