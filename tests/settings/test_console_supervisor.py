"""bin/console's supervisor: a child that exits is started again after an exponential
backoff (capped; reset once it ran long enough) while the others keep running;
Ctrl-C still stops them all."""

import os
import re
import signal
import sys

import psutil
import pytest

from tests.support.processes import Process

RESTART = re.compile(r"crasher will restart in ([\d.]+) s \(crash (\d+) in a row\)")
SCRIPT = """
import sys
from apps.core.supervisor import Supervisor
supervisor = Supervisor(backoff=0.05, max_backoff=0.2, stable_after={stable_after})
supervisor.add_process("crasher", "echo up; exit 3")
supervisor.add_process("steady", "echo steady; exec sleep 300")
supervisor.loop()
sys.exit(supervisor.returncode)
"""


def supervise(stable_after: float) -> Process:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return Process("supervisor", [sys.executable, "-c", SCRIPT.format(stable_after=stable_after)], env)


def restarts(process: Process) -> list[tuple[float, int]]:
    return [(float(delay), int(n)) for delay, n in RESTART.findall(process.output())]


@pytest.mark.parametrize(("stable_after", "delays"), [(3600, [0.05, 0.1, 0.2, 0.2, 0.2]), (0, [0.05] * 5)])
def test_a_crashed_child_restarts_with_capped_backoff_and_ctrl_c_stops_all(stable_after, delays):
    supervisor = supervise(stable_after)
    try:
        supervisor.wait_until(lambda: len(restarts(supervisor)) >= 5, timeout=60, what="restarting the crasher five times")
        assert [delay for delay, _ in restarts(supervisor)[:5]] == delays
        output = supervisor.output()
        assert output.count("steady started") == 1, "the other processes kept running"
        sleeper = next(p for p in psutil.Process(supervisor.proc.pid).children(recursive=True) if p.name() == "sleep")

        os.killpg(supervisor.proc.pid, signal.SIGINT)  # Ctrl-C
        assert supervisor.proc.wait(timeout=30) == 130
        assert "steady stopped" in supervisor.output()
        assert psutil.wait_procs([sleeper], timeout=10)[1] == []
    finally:
        supervisor.stop()
