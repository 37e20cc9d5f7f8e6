from celery import shared_task

from .services import expire_due


@shared_task(name="apps.approvals.tasks.expire_requests")
def expire_requests() -> int:
    return expire_due()
