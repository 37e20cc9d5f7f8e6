"""Uploads inside the gateway: the scan operations claim the file the New scan page staged (their
admission, audited and role-checked with the call), and a scheduled operation sweeps what nobody claimed.
How staging binds a file to its caller: uploads.py."""

from __future__ import annotations

import time

from django.conf import settings
from pydantic import BaseModel, Field

from apps.core.jobs import Context
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


class SweepStagedInput(BaseModel):
    older_than_minutes: int | None = Field(
        None, ge=0, le=60 * 24 * 366, description="Remove staged files older than this (default SECURITY_UPLOAD_STAGED_MINUTES)."
    )


class SweepStagedOutput(BaseModel):
    removed: int = Field(description="Staged files nobody claimed, and stored files whose upload was never recorded, removed.")


@operation("security.sweep_staged_uploads", risk=Risk.WRITE, target=lambda p: "staged uploads")
def sweep_staged_uploads(ctx: Context, params: SweepStagedInput) -> SweepStagedOutput:
    """Remove the files staged on the New scan page that no scan claimed (the page was left, the call refused)
    after SECURITY_UPLOAD_STAGED_MINUTES, and stored upload files without an upload row. Runs on a schedule too."""
    minutes = settings.SECURITY_UPLOAD_STAGED_MINUTES if params.older_than_minutes is None else params.older_than_minutes
    return SweepStagedOutput(removed=len(uploads.sweep(time.time(), minutes * 60)))
