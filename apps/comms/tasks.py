"""Celery entry points: send one delivery; and the beat tick that makes the
database-held schedule happen (group notifications, escalations, retries)."""

from celery import shared_task


@shared_task(name="apps.comms.tasks.deliver", acks_late=True)
def deliver(delivery_id: str) -> None:
    from .dispatch import deliver as send

    send(delivery_id)


@shared_task(name="apps.comms.tasks.tick", acks_late=True)
def tick() -> None:
    from .dispatch import sweep
    from .incidents import escalate_due, flush_due

    flush_due()
    escalate_due()
    sweep()
