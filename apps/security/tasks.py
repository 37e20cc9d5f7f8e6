"""Celery entry points of the security app."""

from celery import shared_task


@shared_task(name="apps.security.tasks.sync_advisories", ignore_result=True)
def sync_advisories() -> None:
    """Scheduled (SECURITY_OSV_SYNC_HOURS): refresh the advisories from OSV's exports, as the console itself."""
    from apps.accounts.actors import Actor
    from apps.core.gateway import invoke

    invoke("security.sync_advisories", Actor.system(), {}, "system")
