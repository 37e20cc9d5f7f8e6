"""Uploaded files for scanning, in two steps, so that no row is written around the gateway.

1. The page *stages* the bytes (`stage`): streamed to SECURITY_UPLOAD_DIR/staging/, cut off at
   SECURITY_UPLOAD_MAX_MB while streaming, hashed (SHA-256). No row. The person gets a token.
2. The scan operation *claims* it inside the gateway (`claim`, the operation's admission: audited,
   role-checked): the staged file becomes an `Upload` row and the file at its stored path.

A staged file's name on disk is an HMAC (SECRET_KEY) of the token, the stager's user id and the
credential they called through ("" for a browser session): only the same caller can name it, so another
person's call, or an agent's (even one acting for the same person), with a leaked token finds nothing
and changes nothing. A claim is one rename, so a token is claimed at most once. Staged files
nobody claimed are removed after SECURITY_UPLOAD_STAGED_MINUTES (`sweep`, a scheduled operation).

3. The stored file is kept for the job that reads it, and no longer: when the job ends, however it ends
   (scanned, failed, cancelled, refused, failed by the reaper), it is released (`release`); the row stays,
   saying what was uploaded and by whom. A job back in the queue (a redelivery, a resume) has not ended.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from django.conf import settings
from django.utils.crypto import salted_hmac

from .errors import ScanError
from .models import Upload

TOKEN_PATTERN = r"^[A-Za-z0-9_-]{43}$"  # secrets.token_urlsafe(32): nothing else is ever a token
SHA256_PATTERN = r"^[0-9a-f]{64}$"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Staged:
    """What the page hands the scan operation: which staged file, and what it computed while streaming it."""

    token: str
    name: str
    size: int
    sha256: str

    def as_input(self) -> dict:
        return asdict(self)


def upload_dir() -> Path:
    return Path(settings.SECURITY_UPLOAD_DIR)


def staging_dir() -> Path:
    return upload_dir() / "staging"


def _staged_path(actor, token: str) -> Path:
    if not re.fullmatch(TOKEN_PATTERN, token or ""):
        raise ScanError("That is not a staged upload's token: upload the file again.")
    if actor.user_id is None:
        raise ScanError("Only a person's own call can claim the file they staged on the New scan page.")
    bound = f"{actor.user_id}:{actor.credential}:{token}"
    name = salted_hmac("apps.security.uploads.staging", bound, algorithm="sha256").hexdigest()
    return staging_dir() / name


def _too_large() -> ScanError:
    return ScanError(f"The upload is larger than {settings.SECURITY_UPLOAD_MAX_MB} MB (SECURITY_UPLOAD_MAX_MB).")


def clean_name(name: str | None) -> str:
    return Path((name or "").replace("\\", "/").replace("\x00", "")).name[:255] or "upload"


def stage(uploaded, actor) -> Staged:
    """Stream a Django UploadedFile to a staging file of the caller `actor` (apps.accounts.actors.Actor), refusing
    it past SECURITY_UPLOAD_MAX_MB (its partial copy removed). Writes no row: the scan operation claims it."""
    limit = settings.SECURITY_UPLOAD_MAX_MB << 20
    if uploaded.size is not None and uploaded.size > limit:
        raise _too_large()
    token = secrets.token_urlsafe(32)
    path = _staged_path(actor, token)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    try:
        with open(path, "xb") as fh:
            for chunk in uploaded.chunks():
                size += len(chunk)
                if size > limit:
                    raise _too_large()
                digest.update(chunk)
                fh.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Staged(token=token, name=clean_name(uploaded.name), size=size, sha256=digest.hexdigest())


def _measure(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            size += len(chunk)
            digest.update(chunk)
    return size, digest.hexdigest()


def claim(actor, staged) -> Upload:
    """Turn a file the caller `actor` staged into an Upload (row and stored file). Run by the scan operations' admission,
    inside the gateway. Refused (ScanError, nothing stored) when the token is malformed, names no file this
    caller staged (another person's or credential's token, one already claimed or swept), or the file is not the size and
    SHA-256 the call gives (then the staged file is removed: it is of no use any more)."""
    path = _staged_path(actor, staged.token)
    upload = Upload(id=uuid.uuid4(), name=clean_name(staged.name), size=staged.size, sha256=staged.sha256, uploaded_by=actor.user)
    stored = upload.stored_path
    try:
        os.rename(path, stored)  # atomic: of two claims of one token, one gets the file
    except FileNotFoundError:
        raise ScanError(
            "No upload staged by you has that token (a staged file is claimed once, and removed after "
            f"{settings.SECURITY_UPLOAD_STAGED_MINUTES} minutes): upload the file again."
        ) from None
    os.utime(stored)  # its age is the claim's now: the sweep leaves it to its job, queued in this call's transaction
    size, sha256 = _measure(stored)
    if size > settings.SECURITY_UPLOAD_MAX_MB << 20:
        stored.unlink(missing_ok=True)
        raise _too_large()
    if size != staged.size or not hmac.compare_digest(sha256, staged.sha256):
        stored.unlink(missing_ok=True)
        raise ScanError("The staged file is not the size and SHA-256 the call gives; it was removed: upload the file again.")
    upload.save()
    return upload


def discard(actor, staged: Staged) -> None:
    """Remove a file the caller staged for a call that was refused (a no-op once it is claimed)."""
    _staged_path(actor, staged.token).unlink(missing_ok=True)


def release(upload_id) -> None:
    """Remove an upload's stored file: its job ended, nothing reads it any more. Its row stays."""
    Upload(pk=uuid.UUID(str(upload_id))).stored_path.unlink(missing_ok=True)


def sweep(now: float, max_age_seconds: float, in_use: set[str]) -> list[str]:
    """Remove staged files older than `max_age_seconds` at `now` (a Unix time), and stored upload files as old that
    no job may read any more: not among `in_use` (the uploads of jobs that have not ended). Those are a claim whose
    call was rolled back after the rename, or an upload whose job ended without releasing it (its worker died right
    after recording the end). The names removed."""
    removed: list[str] = []
    cutoff = now - max_age_seconds
    candidates = [p for p in staging_dir().glob("*") if p.is_file()] if staging_dir().is_dir() else []
    if upload_dir().is_dir():
        candidates += [p for p in upload_dir().iterdir() if p.is_file() and _is_uuid(p.name) and p.name not in in_use]
    for path in candidates:
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(f"{path.parent.name}/{path.name}" if path.parent == staging_dir() else path.name)
        except FileNotFoundError:  # claimed or removed meanwhile
            continue
    return removed


def _is_uuid(name: str) -> bool:
    try:
        return str(uuid.UUID(name)) == name
    except ValueError:
        return False
