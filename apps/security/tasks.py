"""Celery entry points of the security app."""

from celery import shared_task


@shared_task(name="apps.security.tasks.sync_advisories", ignore_result=True)
def sync_advisories() -> None:
    """Scheduled (SECURITY_OSV_SYNC_HOURS): refresh the advisories from OSV's exports, as the console itself."""
    from apps.accounts.actors import Actor
    from apps.core.gateway import invoke

    invoke("security.sync_advisories", Actor.system(), {}, "system")


@shared_task(name="apps.security.tasks.sweep_staged_uploads", ignore_result=True)
def sweep_staged_uploads() -> None:
    """Scheduled (every 15 minutes): remove staged uploads no scan claimed within SECURITY_UPLOAD_STAGED_MINUTES, and
    stored ones as old that no job that has not ended reads."""
    from apps.accounts.actors import Actor
    from apps.core.gateway import invoke

    invoke("security.sweep_staged_uploads", Actor.system(), {}, "system")
