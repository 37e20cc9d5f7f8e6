"""Keep secrets out of the audit log, logs and templates."""

from __future__ import annotations

import re

from pydantic import BaseModel, SecretBytes, SecretStr

from .scrub import scrub

REDACTED = "[redacted]"
SENSITIVE_NAME = re.compile(
    r"(^|[_\-.])(password|passwd|passphrase|token|secret|authorization|auth|credentials?|cookie|"
    r"api[_\-]?key|access[_\-]?key|secret[_\-]?key|private[_\-]?key|key)($|[_\-.])",
    re.IGNORECASE,
)


def is_sensitive_name(name: str) -> bool:
    return bool(SENSITIVE_NAME.search(name))


def redact(value, *, visible: frozenset[str] = frozenset()):
    """A copy of a JSON-like value with sensitive keys' values replaced."""
    if isinstance(value, (SecretStr, SecretBytes)):
        return REDACTED
    if isinstance(value, dict):
        return {k: (REDACTED if k not in visible and is_sensitive_name(str(k)) else redact(v, visible=visible)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v, visible=visible) for v in value]
    return value


def redact_model(params: BaseModel) -> dict:
    """The params of a call as the audit log may show them.

    A field is hidden when its name looks sensitive, when it is a SecretStr, or
    when it is declared `Field(json_schema_extra={"secret": True})`; a field
    declared `{"audit": "show"}` stays visible despite its name (an S3 object
    `key` is not a credential). A mapping field declared `{"secret_keys": [...]}`
    hides those keys' values whatever their names (a form's password inputs). A free-text
    field declared `{"audit": "text"}` (a vote's comment) is kept through `redact_text`.
    """
    hidden, visible, keyed, texts = set(), set(), {}, set()
    for name, info in type(params).model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("secret") or info.annotation in (SecretStr, SecretBytes):
            hidden.add(name)
        elif extra.get("audit") == "show":
            visible.add(name)
        elif extra.get("audit") == "text":
            texts.add(name)
        if extra.get("secret_keys"):
            keyed[name] = set(extra["secret_keys"])
    data = params.model_dump(mode="json")
    for name in hidden:
        if data.get(name) not in (None, ""):
            data[name] = REDACTED
    for name in texts:
        if isinstance(data.get(name), str):
            data[name] = redact_text(data[name])
    for name, keys in keyed.items():
        if isinstance(data.get(name), dict):
            data[name] = {k: REDACTED if k in keys else v for k, v in data[name].items()}
    return redact(data, visible=frozenset(visible))


# "password=…", "token: …" in free text (a reason, a vote's comment).
SECRET_IN_TEXT = re.compile(
    r"(?P<name>\b[\w\-.]*(?:password|passwd|passphrase|token|secret|api[_\-]?key|access[_\-]?key|private[_\-]?key)\b\s*[:=]\s*)\S+",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    """Free text as the audit log may keep it: values given for secret-looking names hidden, then the
    console's one scrubber (credential headers, "Bearer …", user:password@ in URLs)."""
    return scrub(SECRET_IN_TEXT.sub(lambda m: m.group("name") + REDACTED, text or ""))
