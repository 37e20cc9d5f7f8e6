"""Uploads inside the gateway: the scan operations claim the file the New scan page staged (their
admission, audited and role-checked with the call), the file is released when the job that reads it ends
(a job lifecycle hook), and a scheduled operation sweeps what nobody claimed or released.
How staging binds a file to its caller: uploads.py."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import transaction
from pydantic import BaseModel, Field

from apps.core import operations
from apps.core.jobs import Context
from apps.core.models import Job
from apps.core.operations import Risk, operation

from . import uploads
from .errors import ScanError


class StagedUpload(BaseModel):
    """A file the Security → New scan page staged (streamed to disk, capped and hashed; no row yet)."""

    token: str = Field(pattern=uploads.TOKEN_PATTERN, description="The token the page got when it staged the file.")
    name: str = Field(max_length=255, description="The file's original name (.zip and .tar.gz archives are unpacked).")
    size: int = Field(ge=0, description="Its size in bytes, as staged.")
    sha256: str = Field(pattern=uploads.SHA256_PATTERN, description="Its SHA-256 (lowercase hex), as staged.")


STAGED_DESCRIPTION = (
    "A file staged on the Security → New scan page: claimed once, by the same caller (person and credential) that staged it."
)


def admit_upload(ctx: Context, params):
    """The scan operations' admission (gateway, at the call, as the caller): claim `staged` as an Upload the job
    reads by `upload_id`. A caller never names an upload itself: an id could be someone else's."""
    if params.upload_id is not None:
        raise ScanError("upload_id is not an input: the console sets it when it claims `staged` (a file staged on the New scan page).")
    if params.staged is None:
        return params
    upload = uploads.claim(ctx.actor, params.staged)
    ctx.note_in_audit(upload_id=str(upload.pk))
    return params.model_copy(update={"upload_id": upload.pk})


def _upload_operations() -> list[str]:
    """The operations whose jobs read a claimed upload: those admitting one."""
    return [op.name for op in operations.all_operations() if op.admit is admit_upload]


def release_upload(job: Job) -> None:
    """hooks.on_job_ended: a job that ended — scanned, failed (an archive that cannot be unpacked, an error
    before or while scanning), cancelled, refused at its start, failed by the reaper after its worker died —
    releases the upload it read, once its end is committed. A job put back in the queue has not ended: it keeps it."""
    upload_id = job.params.get("upload_id") if job.operation in _upload_operations() else None
    if upload_id:
        transaction.on_commit(lambda: uploads.release(upload_id))


def uploads_in_use() -> set[str]:
    """The uploads that jobs which have not ended (queued, running, back in the queue to resume) may still read."""
    waiting = Job.objects.filter(status__in=[Job.QUEUED, Job.RUNNING], operation__in=_upload_operations())
    return {str(job.params["upload_id"]) for job in waiting.only("params") if job.params.get("upload_id")}


class SweepStagedInput(BaseModel):
    older_than_minutes: int | None = Field(
        None, ge=0, le=60 * 24 * 366, description="Remove staged files older than this (default SECURITY_UPLOAD_STAGED_MINUTES)."
    )


class SweepStagedOutput(BaseModel):
    removed: int = Field(description="Staged files nobody claimed, and stored files no job may read any more, removed.")


@operation("security.sweep_staged_uploads", risk=Risk.WRITE, target=lambda p: "staged uploads")
def sweep_staged_uploads(ctx: Context, params: SweepStagedInput) -> SweepStagedOutput:
    """Remove the files staged on the New scan page that no scan claimed (the page was left, the call refused)
    after SECURITY_UPLOAD_STAGED_MINUTES, and stored upload files as old that no queued or running job reads
    (a claim rolled back; a job that ended without releasing its file). Runs on a schedule too."""
    minutes = settings.SECURITY_UPLOAD_STAGED_MINUTES if params.older_than_minutes is None else params.older_than_minutes
    return SweepStagedOutput(removed=len(uploads.sweep(time.time(), minutes * 60, uploads_in_use())))
