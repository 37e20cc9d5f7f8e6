from celery import shared_task


@shared_task(name="apps.core.tasks.run_job", acks_late=True)
def run_job(job_id: str) -> None:
    from .gateway import run_job as run

    run(job_id)
