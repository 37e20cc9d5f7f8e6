from celery import shared_task

from .verify import write_checkpoint


@shared_task(name="apps.audit.tasks.checkpoint")
def checkpoint() -> dict | None:
    """Periodically record the chain head so a cut-off tail is detectable."""
    return write_checkpoint()


@shared_task(name="apps.audit.tasks.stream", ignore_result=True)
def stream() -> dict[str, int]:
    """Deliver to every enabled SIEM sink what it is missing (kicked after writes, and by beat)."""
    from .stream import drain_all

    return drain_all()
