"""Production settings refuse unsafe configuration; security headers are on."""

import os
import subprocess
import sys

from tests.support.processes import ROOT


def settings_check(**env):
    full = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS")}
    full.update({"OPSCONSOLE_ENV": "production", **env})
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_production_refuses_default_secret_debug_and_empty_hosts():
    result = settings_check(DEBUG="1")
    assert result.returncode != 0
    for problem in ("DEBUG is on", "SECRET_KEY is the development default", "ALLOWED_HOSTS is empty"):
        assert problem in result.stderr


GOOD = {"SECRET_KEY": "x" * 20 + "a-real-random-production-key-0123456789", "ALLOWED_HOSTS": "ops.example.com"}


def test_production_refuses_a_wildcard_host():
    result = settings_check(**{**GOOD, "ALLOWED_HOSTS": "ops.example.com,*"})
    assert result.returncode != 0 and "ALLOWED_HOSTS accepts any host ('*')" in result.stderr


def test_the_environment_name_is_case_insensitive():
    result = settings_check(**{**GOOD, "OPSCONSOLE_ENV": " Production ", "DEBUG": "1"})
    assert result.returncode != 0 and "Refusing to start in production: DEBUG is on" in result.stderr


def test_an_unknown_environment_refuses_to_start():
    result = settings_check(**{**GOOD, "OPSCONSOLE_ENV": "prod"})
    assert result.returncode != 0 and "OPSCONSOLE_ENV='prod' is not one of development, production, test" in result.stderr


def test_production_with_proper_settings_passes_the_deploy_checks():
    result = settings_check(SECRET_KEY="x" * 20 + "a-real-random-production-key-0123456789", ALLOWED_HOSTS="ops.example.com")
    assert result.returncode == 0, result.stdout + result.stderr


def test_security_headers_on_every_page(client):
    response = client.get("/accounts/login/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Request-ID"]


def test_forms_need_csrf(make_user):
    from django.test import Client

    user = make_user("operator")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post("/operations/core.health/", {}).status_code == 403
