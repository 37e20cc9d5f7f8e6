"""Tests use real peers. A missing peer skips its tests on a developer's machine
but fails them in CI (OPSCONSOLE_REQUIRE_PEERS=1): nothing is skipped silently."""

import os
import shutil

import pytest

REQUIRED = os.environ.get("OPSCONSOLE_REQUIRE_PEERS") == "1"


def require(available: bool, what: str, hint: str = "run bin/install-peers as root") -> None:
    if available:
        return
    message = f"{what} is not available ({hint})"
    if REQUIRED:
        pytest.fail(message + " — CI requires every peer", pytrace=False)
    pytest.skip(message)


def require_binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    require(False, " or ".join(names))
    return ""
