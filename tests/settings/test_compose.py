"""docker-compose.yml describes the production stack and is valid."""

import shutil
import subprocess

import yaml

from tests.support import peers
from tests.support.processes import ROOT


def test_compose_file_is_valid_and_has_the_whole_stack(tmp_path):
    compose = peers.require_binary("docker-compose")
    workdir = tmp_path / "stack"
    shutil.copytree(ROOT, workdir, ignore=shutil.ignore_patterns(".venv", "var", ".git", "node_modules"))
    shutil.copy(ROOT / "deploy" / "env.example", workdir / ".env")
    result = subprocess.run([compose, "config"], cwd=workdir, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert {"postgres", "redis", "web", "worker", "beat", "prometheus", "alertmanager", "migrate"} <= set(services)
    assert services["worker"]["environment"]["OPSCONSOLE_ENV"] == "production"
    assert "container_name" not in services["worker"] and "ports" not in services["worker"]  # scales with --scale worker=N
    assert services["web"]["environment"]["DATABASE_URL"].startswith("postgres://")
    # One audit appender; every console process points at its socket in the volume they share.
    assert services["audit-appender"]["command"] == ["python", "manage.py", "audit_appender"]
    for name in ("web", "worker", "beat", "audit-appender"):
        assert services[name]["environment"]["AUDIT_APPENDER_SOCKET"] == "/data/audit-appender.sock"
        assert "console-data:/data:rw" in services[name]["volumes"], services[name]["volumes"]
