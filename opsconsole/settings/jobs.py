"""Celery: the broker (the Redis of cache.py), how tasks are acknowledged, job leases, and every
periodic task beat runs, with the intervals the apps' settings give."""

from datetime import timedelta

from .audit import AUDIT_ANCHOR_SECONDS, AUDIT_STREAM_SECONDS
from .cache import REDIS_CONNECT_TIMEOUT, REDIS_PREFIX, REDIS_SOCKET_TIMEOUT, REDIS_URL
from .comms import COMMS_TICK_SECONDS
from .environment import DATA_DIR, env
from .security import SECURITY_OSV_SYNC_HOURS


def _celery_broker_url(url: str) -> str:
    if url.startswith("unix://"):
        return "redis+socket://" + url.removeprefix("unix://")
    return url


CELERY_BROKER_URL = _celery_broker_url(REDIS_URL)
# A task is acknowledged only when it ends (acks late); a worker that dies mid-task gives it back
# (reject on worker lost), and an unacknowledged task is redelivered after the visibility timeout.
# Redelivery never runs a job twice: run_job checks the job's lease (docs/jobs.md).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "global_keyprefix": f"{REDIS_PREFIX}:",
    "visibility_timeout": int(env("CELERY_VISIBILITY_TIMEOUT", "3600")),
    "socket_timeout": REDIS_SOCKET_TIMEOUT,
    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
}
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_CONNECT_TIMEOUT
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", "opsconsole")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# Job leases: a running job heartbeats every JOB_HEARTBEAT_SECONDS; one silent for JOB_LEASE_SECONDS
# has lost its worker and is resumed or failed by the reaper, which runs every JOB_REAP_SECONDS.
JOB_LEASE_SECONDS = min(60, int(env("JOB_LEASE_SECONDS", "30")))
JOB_HEARTBEAT_SECONDS = float(env("JOB_HEARTBEAT_SECONDS", str(JOB_LEASE_SECONDS / 3)))
JOB_REAP_SECONDS = int(env("JOB_REAP_SECONDS", "10"))
JOB_MAX_ATTEMPTS = int(env("JOB_MAX_ATTEMPTS", "3"))
CELERY_BEAT_SCHEDULE = {
    "approvals-expire": {
        "task": "apps.approvals.tasks.expire_requests",
        "schedule": timedelta(seconds=60),
    },
    "core-reap-jobs": {"task": "apps.core.tasks.reap_jobs", "schedule": timedelta(seconds=JOB_REAP_SECONDS)},
    # Anchors and SIEM streaming: audit.py.
    "audit-anchor": {"task": "apps.audit.tasks.anchor", "schedule": timedelta(seconds=AUDIT_ANCHOR_SECONDS)},
    "audit-stream": {"task": "apps.audit.tasks.stream", "schedule": timedelta(seconds=AUDIT_STREAM_SECONDS)},
}
if SECURITY_OSV_SYNC_HOURS > 0:
    CELERY_BEAT_SCHEDULE["security-sync-advisories"] = {
        "task": "apps.security.tasks.sync_advisories",
        "schedule": timedelta(hours=SECURITY_OSV_SYNC_HOURS),
    }
# Stale multipart uploads: storage.py.
CELERY_BEAT_SCHEDULE["storage-abort-stale-uploads"] = {
    "task": "apps.storage.tasks.abort_stale_uploads",
    "schedule": timedelta(minutes=int(env("STORAGE_CLEANUP_MINUTES", "15"))),
}
# Staged security uploads nobody claimed: security.py (SECURITY_UPLOAD_STAGED_MINUTES).
CELERY_BEAT_SCHEDULE["security-sweep-staged-uploads"] = {
    "task": "apps.security.tasks.sweep_staged_uploads",
    "schedule": timedelta(minutes=15),
}
CELERY_BEAT_SCHEDULE["comms-tick"] = {"task": "apps.comms.tasks.tick", "schedule": timedelta(seconds=COMMS_TICK_SECONDS)}
