"""DESIGN.md "Layers": core at the bottom, then accounts and audit, then approvals, then the domain
apps, then mcp and the web pages. The import-linter contract in pyproject.toml says so; these tests
run it with the suite, so an import that breaks a layer fails here, not in a review."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.core import hooks

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_every_app_imports_only_the_layers_below_it():
    run = lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 kept, 0 broken" in run.stdout


def test_the_contract_refuses_core_importing_an_app_above_it(tmp_path):
    """The same contract on a copy of the apps where core reads the approvals' model directly."""
    shutil.copytree(
        ROOT / "apps",
        tmp_path / "apps",
        ignore=lambda folder, names: [n for n in names if n == "__pycache__" or (Path(folder, n).is_file() and not n.endswith(".py"))],
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "apps/core/pending.py").write_text("from apps.approvals.models import ApprovalRequest  # noqa: F401\n")
    run = lint_imports(tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "apps.core is not allowed to import apps.approvals" in run.stdout
    assert "apps.core.pending -> apps.approvals.models" in run.stdout


def test_what_core_calls_but_does_not_own_is_provided_by_the_app_that_owns_it():
    from apps.accounts.actors import Actor
    from apps.approvals.breakglass import break_glass
    from apps.approvals.services import policy_for, request_approval
    from apps.audit.activity import record_and_show
    from apps.storage.client import connect

    assert hooks.actors() is Actor
    assert hooks.provided("audit") is record_and_show
    assert hooks.approvals() == hooks.ApprovalGate(policy_for=policy_for, request=request_approval, break_glass=break_glass)
    assert hooks.buckets().connect is connect


def test_a_service_nobody_provides_is_a_clear_error():
    with pytest.raises(ImproperlyConfigured, match="Nothing provides 'weather'"):
        hooks.provided("weather")
