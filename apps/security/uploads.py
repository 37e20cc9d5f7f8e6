"""Storing uploaded files for scanning: bounded size, hashed, never executed."""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.conf import settings

from .errors import ScanError
from .models import Upload


def store(uploaded, user) -> Upload:
    """Save a Django UploadedFile under SECURITY_UPLOAD_DIR, refusing it past SECURITY_UPLOAD_MAX_MB."""
    limit = settings.SECURITY_UPLOAD_MAX_MB << 20
    if uploaded.size is not None and uploaded.size > limit:
        raise ScanError(f"The upload is larger than {settings.SECURITY_UPLOAD_MAX_MB} MB (SECURITY_UPLOAD_MAX_MB).")
    upload = Upload(name=Path(uploaded.name or "upload").name[:255], size=0, sha256="", uploaded_by=user)
    path = upload.stored_path
    path.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    try:
        with open(path, "wb") as fh:
            for chunk in uploaded.chunks():
                size += len(chunk)
                if size > limit:
                    raise ScanError(f"The upload is larger than {settings.SECURITY_UPLOAD_MAX_MB} MB (SECURITY_UPLOAD_MAX_MB).")
                digest.update(chunk)
                fh.write(chunk)
    except ScanError:
        path.unlink(missing_ok=True)
        raise
    upload.size, upload.sha256 = size, digest.hexdigest()
    upload.save()
    return upload
