"""Values stored encrypted at rest (connector credentials, service secrets,
the params of queued jobs). Fernet (AES-128-CBC + HMAC) from `cryptography`."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


def _fernet() -> MultiFernet:
    # FIELD_ENCRYPTION_KEY may list several keys, newest first, to rotate.
    keys = [k.strip() for k in settings.FIELD_ENCRYPTION_KEY.split(",") if k.strip()]
    if not keys:
        keys = [base64.urlsafe_b64encode(hashlib.sha256(("field-encryption:" + settings.SECRET_KEY).encode()).digest())]
    return MultiFernet([Fernet(k) for k in keys])


def encrypt(text: str) -> str:
    return _fernet().encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("An encrypted value could not be decrypted: was FIELD_ENCRYPTION_KEY changed?") from None


class EncryptedTextField(models.TextField):
    """A text value encrypted in the database; '' stays ''."""

    def from_db_value(self, value, expression, connection):
        return decrypt(value) if value else value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return encrypt(value) if value else value


class EncryptedJSONField(models.TextField):
    """A JSON value encrypted in the database."""

    def from_db_value(self, value, expression, connection):
        return json.loads(decrypt(value)) if value else None

    def to_python(self, value):
        return json.loads(value) if isinstance(value, str) else value

    def get_prep_value(self, value):
        if value is None:
            return None
        return encrypt(json.dumps(value, default=str))
