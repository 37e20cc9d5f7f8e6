from celery import shared_task
from celery.signals import worker_ready


@shared_task(name="apps.core.tasks.run_job", acks_late=True)
def run_job(job_id: str) -> None:
    from .gateway import run_job as run
    from .leases import Heartbeat

    with Heartbeat(job_id):
        run(job_id)


@shared_task(name="apps.core.tasks.reap_jobs")
def reap_jobs() -> int:
    """Resume or fail every running job whose worker is gone (Celery beat, and each worker as it starts)."""
    from .gateway import reap_jobs as reap

    return reap()


@worker_ready.connect(dispatch_uid="core.reap_on_worker_start")
def reap_on_worker_start(**kwargs) -> None:
    # A worker restarted after a crash finds its own dead pool processes' jobs at once.
    reap_jobs.delay()
