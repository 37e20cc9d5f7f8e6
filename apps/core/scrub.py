"""The one scrubber for peer error text. A peer (or a proxy in front of it)
may echo the request back in its error body — Authorization header, cookies,
the webhook URL with its key. Every connector passes its error text through
here, with that connector's credentials, before the text is stored (delivery
log, job error, audit row) or shown.

    with scrubbed(token, password, webhook_url):
        ...  # any OpsError raised inside leaves with its message scrubbed
"""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import Iterable, Iterator
from urllib.parse import quote, quote_plus, urlsplit

from .errors import OpsError

MASK = "[redacted]"
# Secrets shorter than this are not searched for: "ab" would mangle every message.
MIN_SECRET = 6
# Credential-carrying headers, as "Name: value" / "name=value" / JSON "name": "value".
_HEADER = re.compile(
    r"""(?P<name>\b(?:proxy-)?authorization|\bcookie|\bset-cookie|\bx-api-key|\bx-auth-token|\bapi[-_]?key)"""
    r"""(?P<sep>["']?\s*[:=]\s*["']?)(?P<value>[^"'\r\n,}]+)""",
    re.IGNORECASE,
)
# A bare credential scheme anywhere ("Bearer abc", "Basic dXNlcjpwdw==").
_SCHEME = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=\-]{6,}", re.IGNORECASE)
# user:password@ in a URL.
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)[^/@\s:]+:[^/@\s]+@", re.IGNORECASE)


def _forms(secret: str) -> set[str]:
    """The ways a secret shows up in an echo: as is, URL-encoded, in a Basic header, and a URL's path and query."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret)}
    if secret.startswith(("http://", "https://")):
        parts = urlsplit(secret)
        forms |= {p for p in (parts.path, parts.query, parts.path.lstrip("/")) if len(p) >= MIN_SECRET}
        forms |= {seg for seg in re.split(r"[/?&=]", parts.path + "?" + parts.query) if len(seg) >= 16}
    return {f for f in forms if len(f) >= MIN_SECRET}


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with every given secret (and any credential header value) replaced by [redacted]."""
    if not text:
        return text
    values = [s for s in secrets if s and len(s) >= MIN_SECRET]
    users = [s for s in values if ":" in s and not s.startswith(("http://", "https://"))]
    for pair in users:  # "user:password" pairs also appear base64-encoded in a Basic header
        values.append(base64.b64encode(pair.encode()).decode())
    for form in sorted({f for s in values for f in _forms(s)}, key=len, reverse=True):
        text = text.replace(form, MASK)
    text = _HEADER.sub(lambda m: f"{m['name']}{m['sep']}{MASK}", text)
    text = _SCHEME.sub(lambda m: f"{m[1]} {MASK}", text)
    return _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)


def scrub_error(exc: OpsError, secrets: Iterable[str | None] = ()) -> OpsError:
    """Scrub an error's message in place (it is what the gateway audits and the pages show)."""
    exc.message = scrub(exc.message, list(secrets))
    exc.args = (exc.message, *exc.args[1:])
    return exc


@contextlib.contextmanager
def scrubbed(*secrets: str | None) -> Iterator[None]:
    """Any OpsError leaving the block leaves with its message scrubbed of `secrets`."""
    try:
        yield
    except OpsError as exc:
        scrub_error(exc, secrets)
        raise
