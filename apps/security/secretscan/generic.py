"""Generic rules: passwords and secrets assigned to suggestive names, and
high-entropy literals in any assignment (thresholds in `checks`). They lose
to a provider rule that matches the same text (priority 0)."""

from __future__ import annotations

import posixpath
import re

from . import checks
from .rules import MEDIUM, Rule

# Names that hold identifiers or locations, not secrets: KEY_ID, TOKEN_FILE, SECRET_PATH, TOKEN_URL...
ID_NAME = re.compile(
    r"(?i)(?:^|[_\-.])(?:id|file|path|dir|url|uri|host|name|type|length|size|count|header|field|hint|label|prompt|policy|regex|pattern|"
    r"format|rule|reset|help|text|message|placeholder|template|expiry|expires|changed|updated|required|enabled|min|max|store|backend|"
    r"provider|mode|method|class|scheme|source|version|endpoint|prefix|suffix|arn|marker|input|output|kind|param|params|key_name|sid|"
    r"used|date|time|at|reply|keyword|keywords|field|fields)$"
)
TYPE_OR_NUMBER = re.compile(r"(?i)^(?:(?:string|str|int|integer|bool|boolean|number|bytes|any|object|text)\??|[\d.:\-+TZ ]+)$")
FILENAME = re.compile(r"\.[a-z]{2,4}\d?$")  # Setuptools-1.2.3.egg, bundle.min.js
CONFIG_SUFFIXES = (".env", ".ini", ".cfg", ".conf", ".properties", ".yaml", ".yml", ".sh", ".bash", ".zsh", ".envrc")
PASSWORD_NAME = r"(?i)(?P<n>(?:password|passwd|passphrase|pwd)[\w.\-]{0,20})"
SECRET_NAME = (
    r"(?i)(?P<n>(?:secret|token|api[_\-.]?key|apikey|access[_\-.]?key|auth[_\-.]?key|private[_\-.]?key|"
    r"signing[_\-.]?key|credentials?|client[_\-.]?secret)[\w.\-]{0,30})"
)
SECRET_KEYWORDS = (
    "secret", "token", "credential", "apikey", "api_key", "api-key", "api.key", "accesskey", "access_key", "access-key",
    "authkey", "auth_key", "auth-key", "privatekey", "private_key", "private-key", "signing_key", "signing-key",
)  # fmt: skip
OPERATOR = r"""["']?[ \t]{0,5}(?:=|:=|:|=>)[ \t]{0,5}"""
# RE2 syntax (no back-references, no look-ahead): these rules run on RE2.
QUOTED = r"""[bruBRUf]{0,2}["'`](?P<s>[^"'`\s]{%d,400})["'`]"""
UNQUOTED = r"""(?P<s>[^\s"'`,;{}()\[\]]{%d,400})[ \t]*(?:$|#|;)"""


def is_config_file(path: str) -> bool:
    name = posixpath.basename(path).lower()
    return name.endswith(CONFIG_SUFFIXES) or name.startswith(".env") or name in {"dockerfile", "containerfile"}


def literal_value(value: str, name: str) -> bool:
    if checks.is_template(value) or checks.is_reference(value) or checks.is_code(value) or ID_NAME.search(name):
        return False
    if value.startswith(("/", "./", "../", "~/")) or "://" in value:
        return False  # a path or a URL (URLs with credentials have their own rules)
    if name and checks.HASH_NAME_RE.search(name) and not checks.SECRET_NAME_RE.search(name.replace("hash", "")):
        return False
    if TYPE_OR_NUMBER.match(value):
        return False  # "string?" (a schema's type), "257.1", "2016-09-08T21:47:36Z"
    return value.lower() not in {"true", "false", "null", "none", "nil", "undefined", "required", "optional", "string"}


def password_literal(value: str, name: str, path: str) -> bool:
    # "not_supported", "PasswordPolicy": names and words, not passwords (a placeholder is still reported, as an example)
    words = checks.is_identifier(value) and bool(re.search(r"[a-z][A-Z]|[_\-.]", value))
    return literal_value(value, name) and not value.startswith(("os.", "env(", "getenv")) and not words


def secret_literal(value: str, name: str, path: str) -> bool:
    # A secret-named literal is reported when it is not a template, not a name (NextPageToken) and looks random enough.
    if checks.is_placeholder(value):
        return not checks.is_template(value)
    return (
        literal_value(value, name) and checks.entropy(value) >= 3.0 and not checks.UUID_RE.match(value) and not checks.is_identifier(value)
    )


def entropy_literal(value: str, name: str, path: str) -> bool:
    return not (checks.is_template(value) or ID_NAME.search(name) or FILENAME.search(value)) and checks.high_entropy(value, name)


GENERIC_RULES = [
    Rule("generic-password", "Hard-coded password", PASSWORD_NAME + OPERATOR + QUOTED % 4,
         ("pass", "pwd"), MEDIUM, check=password_literal, priority=0, re2=True),
    Rule("generic-password-config", "Password in a configuration file", PASSWORD_NAME + OPERATOR + UNQUOTED % 4,
         ("pass", "pwd"), MEDIUM, check=password_literal, priority=0, re2=True, paths=is_config_file),
    Rule("generic-secret", "Hard-coded secret or token", SECRET_NAME + OPERATOR + QUOTED % 8,
         SECRET_KEYWORDS, MEDIUM, check=secret_literal, priority=0, re2=True),
    Rule("generic-secret-config", "Secret or token in a configuration file", SECRET_NAME + OPERATOR + UNQUOTED % 8,
         SECRET_KEYWORDS, MEDIUM, check=secret_literal, priority=0, re2=True, paths=is_config_file),
    Rule("high-entropy-assignment", "High-entropy string assigned in code or configuration",
         r"""(?<![=!<>:])(?:=|:|=>)[ \t]{0,5}(?:[bruBRUf]{0,2}["'`])?(?P<s>[A-Za-z0-9+/_\-.~]{20,512}={0,2})(?![A-Za-z0-9+/_\-.~=(\[])""",
         (), "low", check=entropy_literal, priority=-1),
]  # fmt: skip
