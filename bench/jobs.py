"""Time to detect a dead worker's job, on this machine (printed, never asserted):

- a pool process killed (kill -9) on a machine where the worker lives on: Celery gives
  the task back and its redelivery finds the lease holder dead (the fast path);
- a whole worker killed on "another machine" (its own pid namespace, so only its lease
  tells whether it lives): Celery beat's reaper finds the lease over (≤ lease + reap period).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ops_bench REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/jobs.py          (as root: `unshare --pid` makes the other machine)
"""

from harness import scratch_database  # isort: skip

import os
import shutil
import signal
import sys
import tempfile
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from apps.accounts.actors import Actor
from apps.core.gateway import invoke
from apps.core.models import Job
from tests.support.processes import Process, console_env

CELERY = [sys.executable, "-m", "celery", "-A", "opsconsole"]
QUEUE = ["-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "--without-mingle", "--without-gossip", "--loglevel", "INFO"]


def worker(name: str, *, elsewhere: bool = False) -> Process:
    argv = [*CELERY, "worker", "--pool", "prefork", "--concurrency", "1", *QUEUE, "-n", f"{name}-{os.getpid()}@%h"]
    if elsewhere:
        argv = ["unshare", "--pid", "--fork", "--mount-proc", *argv]
    process = Process(name, argv, console_env())
    process.wait_until(lambda: " ready." in process.output(), timeout=120)
    return process


def until(predicate, timeout: float = 300) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise SystemExit("gave up waiting")
        time.sleep(0.05)
    return time.monotonic() - started


def running_job(actor) -> Job:
    job = invoke("core.echo_job", actor, {"steps": 100, "step_seconds": 2, "message": "bench"}).job
    until(lambda: Job.objects.filter(pk=job.pk, status="running", progress__gte=1).exists())
    return Job.objects.get(pk=job.pk)


def ended(job: Job) -> bool:
    return Job.objects.get(pk=job.pk).finished


def main() -> None:
    with scratch_database():
        user = get_user_model().objects.create_user("bench-operator", password="unused-password-123")
        user.groups.add(Group.objects.get(name="operator"))
        actor = Actor.for_user(user)
        print(f"lease {settings.JOB_LEASE_SECONDS} s, heartbeat every {settings.JOB_HEARTBEAT_SECONDS:g} s, "
              f"reaper every {settings.JOB_REAP_SECONDS} s")  # fmt: skip

        here = worker("here")
        job = running_job(actor)
        os.kill(int(job.worker.rsplit(":", 1)[1]), signal.SIGKILL)
        print(f"  pool process killed, worker lives on:  job ended after {until(lambda: ended(job)):6.1f} s")
        here.stop()

        if shutil.which("unshare") is None or os.geteuid() != 0:
            print("  (whole worker on another machine: needs root and unshare; skipped)")
            return
        there = worker("there", elsewhere=True)
        job = running_job(actor)
        beat_dir = tempfile.mkdtemp(prefix="bench-beat-")
        os.killpg(there.proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        reaper, beat = worker("reaper"), Process("beat", [*CELERY, "beat", "-s", f"{beat_dir}/schedule"], console_env())
        try:
            until(lambda: ended(job))
            job.refresh_from_db()
            silent = (job.finished_at - job.heartbeat_at).total_seconds()
            print(f"  whole worker killed on another machine: job ended after {time.monotonic() - killed:6.1f} s "
                  f"({silent:.1f} s after its last heartbeat): {job.error}")  # fmt: skip
        finally:
            beat.stop()
            reaper.stop()
            shutil.rmtree(beat_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
