"""Fault-suite fixtures: a Celery worker of its own (prefork, so a pool process can be
killed as on a production machine) that alone consumes the run's queue meanwhile; the
comms wire-format peers (Slack, Twilio, a webhook receiver) for the echo and DNS drills."""

from __future__ import annotations

import os
import signal
import socket

import psutil
import pytest
from django.conf import settings

from apps.core.models import Job
from opsconsole.celery import app
from tests.comms.conftest import loopback_allowed, peer_servers, receiver, run_job, slack, twilio  # noqa: F401
from tests.infrastructure.conftest import environment, images, podman  # noqa: F401 (the deploy fault runs on podman)
from tests.support import processes


@pytest.fixture
def lone_worker(transactional_db):
    """Start a prefork worker; the run's shared worker (if started) stops consuming until the test ends."""
    queue, shared = settings.CELERY_TASK_DEFAULT_QUEUE, [f"test-{os.getpid()}@{socket.gethostname()}"]
    app.control.cancel_consumer(queue, destination=shared, reply=True, timeout=2)
    workers: list[processes.Process] = []

    def start(concurrency: int = 1) -> processes.Process:
        workers.append(processes.start_worker(pool="prefork", concurrency=concurrency, name="fault"))
        return workers[-1]

    yield start
    for worker in workers:
        worker.stop()
    app.control.add_consumer(queue, destination=shared, reply=True, timeout=2)


def kill_holder(job: Job, worker: processes.Process) -> int:
    """kill -9 the pool process of `worker` that holds the job's lease; its pid."""
    job.refresh_from_db()
    pid = int(job.worker.rsplit(":", 1)[1])
    assert pid in [child.pid for child in psutil.Process(worker.proc.pid).children()], "the job runs on another worker"
    os.kill(pid, signal.SIGKILL)
    return pid
