from celery import shared_task


@shared_task(ignore_result=True)
def abort_stale_uploads() -> None:
    """Scheduled: abort multipart uploads the console could not abort when they failed."""
    from apps.accounts.actors import Actor
    from apps.core.gateway import invoke

    invoke("storage.abort_stale_uploads", Actor.system(), {}, "system")
