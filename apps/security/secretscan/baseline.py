"""Baseline files: findings known and accepted, not reported again.

`.security-baseline.json` at the top of a scanned tree (write one with
`manage.py secrets_baseline <dir>`):

    {"version": 1, "generated_by": "opsconsole",
     "results": [{"path": "settings/dev.py", "rule": "generic-password", "line": 12, "fingerprint": "<hmac>"}]}

A finding is suppressed when its path and fingerprint (HMAC-SHA256 of rule
and secret, keyed by SECURITY_FINGERPRINT_KEY) are both listed; the line may
move. No secret and no preview is stored in the file.
"""

from __future__ import annotations

import json
from pathlib import Path

from .engine import SecretHit

FILENAME = ".security-baseline.json"


class BaselineError(ValueError):
    pass


def load(path: Path) -> frozenset[tuple[str, str]]:
    try:
        data = json.loads(path.read_text("utf-8"))
        return frozenset((r["path"], r["fingerprint"]) for r in data.get("results", []))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BaselineError(f"{path.name} is not a valid baseline file: {exc}") from None


def dump(hits: list[SecretHit]) -> str:
    results = [
        {"path": h.path, "rule": h.rule, "line": h.line, "fingerprint": h.fingerprint} for h in sorted(hits, key=lambda h: (h.path, h.line))
    ]
    return json.dumps({"version": 1, "generated_by": "opsconsole", "results": results}, indent=2) + "\n"
