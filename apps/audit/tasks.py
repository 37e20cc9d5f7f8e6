from celery import shared_task

from .anchors import write_anchor


@shared_task(name="apps.audit.tasks.anchor")
def anchor() -> dict | None:
    """Every AUDIT_ANCHOR_SECONDS: sign the chain head, if it moved since the newest anchor, and store it
    off the database, so a cut-off tail is detectable (None when nothing was written)."""
    return write_anchor()


@shared_task(name="apps.audit.tasks.stream", ignore_result=True)
def stream() -> dict[str, int]:
    """Deliver to every enabled SIEM sink what it is missing (kicked after writes, and by beat)."""
    from .stream import drain_all

    return drain_all()
