"""In Chromium: an operator opens a service's spec editor from its page, adds a port and
variables (one secret), sees only the chosen strategy's and healthcheck kind's fields, and
saves; the console stores the spec through the gateway, the stored secret kept.
axe-core checks the editor with a strategy's rows shown."""

import re
from pathlib import Path

import pytest
from django.conf import settings

from apps.audit.models import AuditEvent
from apps.core.gateway import invoke
from apps.infrastructure.models import Environment, Service
from tests.support import peers

from .conftest import RUN, log_in

pytestmark = [pytest.mark.browser]
AXE = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"


@pytest.mark.django_db(transaction=True)
def test_operator_edits_ports_and_env_in_the_spec_editor(browser, console_server, make_user, actor_of):
    peers.require(AXE.exists(), "axe-core (npm ci, run by bin/test)")
    env = Environment.objects.create(name=f"{RUN}-edit", engine_url="unix:///run/no-engine-needed-to-save.sock")
    operator = make_user("operator")
    invoke("infrastructure.save_service", actor_of(operator), {
        "environment": env.name, "name": "shop", "image": "busybox:1.36", "ports": [{"container": 8080}],
        "env": {"MODE": "test"}, "secret_env": {"DB_PASSWORD": "hunter2-secret"}, "strategy": "rolling",
    })  # fmt: skip
    page = log_in(browser, console_server, operator.username, operator.raw_password, bypass_csp=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{console_server}/infrastructure/{env.name}/shop/")
    page.click("#edit-spec")
    page.wait_for_url(re.compile(r".*/shop/edit/$"))

    secret = page.get_by_label("Environment variables value 2")
    assert secret.get_attribute("type") == "password" and secret.input_value() == ""
    assert "hunter2" not in page.content()
    page.get_by_label("Ports container port 2").fill("9090")
    page.get_by_label("Ports host port 2").fill("19090")
    page.get_by_label("Environment variables value 1").fill("production")
    page.get_by_label("Environment variables name 3").fill("API_KEY")
    page.get_by_label("Environment variables value 3").fill("k-123")
    page.get_by_label("Environment variables secret 3").check()
    assert page.get_by_label("Environment variables value 3").get_attribute("type") == "password"  # masked as it becomes secret

    assert page.get_by_label("Batch size").is_visible() and not page.get_by_label("Canary steps step 1").is_visible()
    page.select_option("#id_strategy", "canary")
    assert page.get_by_label("Canary steps step 1").is_visible() and not page.get_by_label("Batch size").is_visible()
    assert not page.get_by_label("Keep old colour (s)").is_visible()
    page.select_option("#id_healthcheck_kind", "tcp")
    assert page.get_by_label("Probe port").is_visible() and not page.get_by_label("Path", exact=True).is_visible()

    page.add_script_tag(path=str(AXE))
    found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
                          ".filter(v => ['serious', 'critical'].includes(v.impact)).map(v => v.id)")  # fmt: skip
    assert found == []
    page.get_by_label("Probe port").focus()  # the controls are reachable from the keyboard
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.id") == "id_healthcheck_kind"

    page.select_option("#id_strategy", "rolling")
    page.click("#spec-save")
    page.wait_for_url(f"{console_server}/infrastructure/{env.name}/shop/")
    assert "saved: the next deploy applies it" in page.inner_text("main")
    service = Service.objects.get(environment=env, name="shop")
    spec = service.parsed_spec
    assert [(p.container, p.host) for p in spec.ports] == [(8080, None), (9090, 19090)]
    assert spec.env == {"MODE": "production"} and spec.healthcheck.kind == "tcp"
    assert service.secret_env == {"API_KEY": "k-123", "DB_PASSWORD": "hunter2-secret"}
    assert AuditEvent.objects.filter(operation="infrastructure.save_service", actor=operator.username, outcome="ok").count() == 2
    assert errors == []
