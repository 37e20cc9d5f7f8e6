"""A web process freezes what it loaded at start-up (opsconsole/asgi.py): Django, every app and the
operation registry are then not traversed by each full collection for the life of the process."""

import subprocess
import sys

from tests.support.processes import ROOT, console_env

PROBE = "import gc; before = gc.get_freeze_count(); import opsconsole.asgi; print(before, gc.get_freeze_count())"


def test_a_web_process_moves_its_start_up_heap_out_of_the_collectors_reach():
    done = subprocess.run([sys.executable, "-c", PROBE], env=console_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    before, frozen = map(int, done.stdout.split()[-2:])
    assert before == 0
    assert frozen > 100_000  # every object Django and the apps made while loading
