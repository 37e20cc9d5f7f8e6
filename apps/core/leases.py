"""Job leases: a running job proves that its worker lives by heartbeating.

The worker process that claims a job writes its identity into the job and
refreshes `heartbeat_at` from every progress report and log line, and from a
background thread while the operation runs (an operation may be silent for a
long time). A job whose heartbeat is older than the lease has lost its worker;
so has one held by a process of this machine that no longer exists, which lets
a sibling worker (or the reaper on the same machine) see a killed pool process
at once instead of after the lease. The gateway decides what happens next
(`gateway.recover_job`): resume or fail, never left running.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timedelta

import psutil
from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import Q
from django.utils import timezone

from .models import Job

log = logging.getLogger(__name__)


def _host() -> str:
    # The pid namespace tells apart containers that share a host name (host networking).
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}/{namespace}"


def worker_id() -> str:
    """This process, as a lease holder: "host/pid-namespace:pid"."""
    return f"{_host()}:{os.getpid()}"


def beat(job: Job, now: datetime | None = None) -> bool:
    """Renew the lease of `job` if this process still holds it; False when it lost it (reaped, resumed elsewhere)."""
    now = now or timezone.now()
    renewed = Job.objects.filter(pk=job.pk, status=Job.RUNNING, worker=worker_id()).update(heartbeat_at=now)
    if renewed:
        job.heartbeat_at = now
    return bool(renewed)


def holder_gone(job: Job) -> bool:
    """The process holding the lease ran on this machine and no longer exists."""
    host, _, pid = job.worker.rpartition(":")
    return host == _host() and pid.isdigit() and not _alive(int(pid))


def _alive(pid: int) -> bool:
    # A killed worker's pool processes stay zombies until someone reaps them: dead all the same.
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def expired(job: Job, now: datetime | None = None) -> bool:
    last = job.heartbeat_at or job.started_at
    return last is None or last < (now or timezone.now()) - timedelta(seconds=settings.JOB_LEASE_SECONDS)


def is_lost(job: Job, now: datetime | None = None) -> bool:
    """A running job whose worker is gone: its lease expired, or its holder died on this machine."""
    return job.status == Job.RUNNING and (expired(job, now) or holder_gone(job))


def lost_jobs(now: datetime | None = None) -> list[Job]:
    """Running jobs whose worker is gone (the reaper's work list)."""
    stale = (now or timezone.now()) - timedelta(seconds=settings.JOB_LEASE_SECONDS)
    running = Job.objects.filter(status=Job.RUNNING).select_related("requested_by")
    candidates = running.filter(Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True) | Q(worker__startswith=_host() + ":"))
    return [job for job in candidates if is_lost(job, now)]


class Heartbeat:
    """Renews a job's lease from a background thread while its operation runs on the worker.

    Only the Celery task uses it: the operation's own progress and log calls beat too, but an
    operation may block for minutes in one call (an image pull, a long runbook)."""

    def __init__(self, job_pk, interval: float | None = None):
        self.job = Job(pk=job_pk)
        self.interval = interval or settings.JOB_HEARTBEAT_SECONDS
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat {job_pk}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    beat(self.job)
                except Exception:  # the database may be away for a moment: the next beat tries again
                    log.warning("heartbeat of job %s failed", self.job.pk, exc_info=True)
                    close_old_connections()
        finally:
            connection.close()  # this thread's own connection
