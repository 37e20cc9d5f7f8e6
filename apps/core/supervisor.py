"""The supervisor of `bin/console`: honcho's process manager, except that a child
that exits is started again after a capped exponential backoff instead of
taking every other process down with it. Ctrl-C (SIGINT) or SIGTERM still stops
them all.

honcho runs each child and multiplexes its output, but its loop ends as soon as
one child stops; this subclass keeps honcho's process handling and output and
replaces only that loop. No Django here: it supervises the processes Django runs in.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import signal
import time

from honcho.manager import KILL_WAIT, SIGNALS, Manager


class Supervisor(Manager):
    def __init__(self, *, backoff: float = 1.0, max_backoff: float = 30.0, stable_after: float = 60.0, clock=time.monotonic):
        super().__init__()
        self.backoff, self.max_backoff, self.stable_after, self.clock = backoff, max_backoff, stable_after, clock
        self._crashes: dict[str, int] = {}  # name -> quick exits in a row
        self._since: dict[str, float] = {}  # name -> when it last started
        self._restart_at: dict[str, float] = {}

    def loop(self) -> None:
        def stop_all(signum, frame):
            self._system_print(f"{SIGNALS[signum]['name']} received\n")
            self.returncode = SIGNALS[signum]["rc"]
            self._restart_at.clear()
            self.terminate()

        signal.signal(signal.SIGTERM, stop_all)
        signal.signal(signal.SIGINT, stop_all)
        self._start()
        for name in self._processes:
            self._since[name] = self.clock()
        stopping_since = None
        while True:
            with contextlib.suppress(queue.Empty):
                self._handle(self.events.get(timeout=0.1))
            if self._terminating:
                if all(p.get("returncode") is not None for p in self._processes.values()):
                    break
                stopping_since = stopping_since or self.clock()
                if self.clock() - stopping_since > KILL_WAIT:
                    self.kill()
                continue
            for name, when in list(self._restart_at.items()):
                if self.clock() >= when:
                    del self._restart_at[name]
                    self._restart(name)

    def _handle(self, msg) -> None:
        entry = self._processes.get(msg.name)
        if msg.type == "line":
            self._printer.write(msg)
        elif msg.type == "start":
            entry["pid"] = msg.data["pid"]
            self._system_print(f"{msg.name} started (pid={msg.data['pid']})\n")
            if self._terminating:  # started while everything stops: it stops too
                self._procmgr.terminate(msg.data["pid"])
        elif msg.type == "stop":
            entry["returncode"] = msg.data["returncode"]
            self._system_print(f"{msg.name} stopped (rc={msg.data['returncode']})\n")
            if not self._terminating:
                self._schedule_restart(msg.name)

    def _schedule_restart(self, name: str) -> None:
        if self.clock() - self._since[name] >= self.stable_after:
            self._crashes[name] = 0  # it had run well: a new crash starts the backoff over
        crashes = self._crashes.get(name, 0)
        delay = min(self.max_backoff, self.backoff * 2**crashes)
        self._crashes[name] = crashes + 1
        self._restart_at[name] = self.clock() + delay
        self._system_print(f"{name} will restart in {delay:g} s (crash {crashes + 1} in a row)\n")

    def _restart(self, name: str) -> None:
        entry = self._processes[name]
        entry.pop("returncode", None)
        entry["pid"] = None  # until the child reports its start
        entry["process"] = multiprocessing.Process(name=name, target=entry["obj"].run, args=(self.events, True))
        entry["process"].start()
        self._since[name] = self.clock()

    def _killall(self, force: bool = False) -> None:
        # A child being restarted has no pid yet: it is stopped when it reports its start (see _handle).
        for name, entry in self._processes.items():
            if "returncode" not in entry and entry.get("pid"):
                self._system_print(f"sending {'SIGKILL' if force else 'SIGTERM'} to {name} (pid {entry['pid']})\n")
                (self._procmgr.kill if force else self._procmgr.terminate)(entry["pid"])
