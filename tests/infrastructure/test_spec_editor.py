"""The typed service-spec editor: prefilled from the stored spec, secret values write-only,
only the chosen strategy's options kept, the operation's errors next to their fields, the
gateway's permission and approval rules unchanged. Saving a spec does not reach the engine."""

import re

import pytest

from apps.approvals.models import ApprovalRequest
from apps.audit.models import AuditEvent
from apps.core.gateway import invoke
from apps.infrastructure.models import Environment, Service
from apps.infrastructure.specs import StrategyOptions

pytestmark = pytest.mark.django_db


@pytest.fixture
def env(db):
    return Environment.objects.create(name="edit-staging", engine_url="unix:///run/no-engine-needed.sock")


@pytest.fixture
def api(env, operator):
    invoke("infrastructure.save_service", operator, {
        "environment": env.name, "name": "api", "image": "busybox:1.36", "env": {"MODE": "prod"},
        "secret_env": {"DB_PASSWORD": "hunter2-secret"}, "ports": [{"container": 8080, "host": 18080}],
        "healthcheck": {"kind": "tcp", "port": 8080, "interval_seconds": 0.5}, "labels": {"team": "shop"},
        "resources": {"memory": "256m"}, "strategy": "canary",
        "strategy_options": {"steps": [{"set_weight": 25}, {"pause": {"seconds": 5}}, {"analysis": {"count": 2}}]},
    })  # fmt: skip
    return Service.objects.get(environment=env, name="api")


def edit_url(service) -> str:
    return f"/infrastructure/{service.environment.name}/{service.name}/edit/"


def submitted(**fields) -> dict:
    """What the editor posts for a small http service (rows as the widgets name them), with `fields` over it."""
    data = {
        "environment": "edit-staging", "name": "api", "image": "busybox:1.36", "replicas": "2", "command": "",
        "ports-container-0": "8080", "ports-host-0": "", "ports-container-1": "", "ports-host-1": "",
        "env-name-0": "MODE", "env-value-0": "prod", "env-name-1": "DB_PASSWORD", "env-value-1": "", "env-secret-1": "on",
        "env-name-2": "", "env-value-2": "", "labels-key-0": "", "labels-value-0": "",
        "healthcheck_kind": "http", "healthcheck_path": "/version", "strategy": "rolling", "strategy_options_batch_size": "2",
    }  # fmt: skip
    return {k: v for k, v in (data | fields).items() if v is not None}


def has_input(html: str, name: str, value: str) -> bool:
    return re.search(rf'name="{name}"[^>]* value="{re.escape(value)}"', html) is not None


def field_html(html: str, name: str) -> str:
    """The editor's block of one field: from its div to the next field's."""
    start = html.rindex('<div class="field"', 0, html.index(f'id="id_{name}"'))
    return html[start : html.index('<div class="field"', start + 1)]


def test_editor_is_prefilled_and_never_renders_a_secret_value(client_as, api):
    html = client_as("operator").get(edit_url(api)).content.decode()
    assert "hunter2-secret" not in html
    assert has_input(html, "env-name-0", "MODE") and has_input(html, "env-value-0", "prod")
    secret_row = html.split('name="env-name-1"', 1)[1].split("</tr>", 1)[0]
    assert 'value="DB_PASSWORD"' in secret_row and 'type="password"' in secret_row and 'name="env-secret-1"' in secret_row
    assert re.search(r'<input type="password"[^>]*name="env-value-1"[^>]*placeholder="unchanged when empty"', html)
    assert has_input(html, "ports-container-0", "8080") and has_input(html, "ports-host-0", "18080")
    assert '<option value="tcp" selected>' in html and has_input(html, "healthcheck_port", "8080")
    assert has_input(html, "resources_memory", "256m") and has_input(html, "labels-key-0", "team")
    assert '<option value="canary" selected>' in html
    assert '<option value="set_weight" selected>' in html and has_input(html, "strategy_options_steps-weight-0", "25")
    assert has_input(html, "strategy_options_steps-seconds-1", "5.0") and has_input(html, "strategy_options_steps-count-2", "2")
    assert 'data-shown-when="id_strategy:rolling"' in html and 'data-shown-when="id_healthcheck_kind:http"' in html
    assert 'aria-label="Environment variables secret 2"' in html  # every row input is labelled


def test_new_service_form_offers_the_environments_and_defaults(client_as, env):
    html = client_as("operator").get(f"/infrastructure/new-service/?environment={env.name}").content.decode()
    assert f'<option value="{env.name}" selected>' in html
    assert '<option value="http" selected>' in html and has_input(html, "healthcheck_path", "/")
    assert '<option value="rolling" selected>' in html and 'name="env-name-0"' in html


def test_blank_secret_is_kept_new_one_set_and_removed_row_deleted(client_as, api):
    client = client_as("operator")
    response = client.post(edit_url(api), submitted())
    assert response.status_code == 302 and response["Location"] == api.get_absolute_url()
    api.refresh_from_db()
    assert api.secret_env == {"DB_PASSWORD": "hunter2-secret"} and api.parsed_spec.env == {"MODE": "prod"}
    assert api.parsed_spec.secret_env_names == ["DB_PASSWORD"]

    client.post(edit_url(api), submitted(**{"env-name-1": "API_KEY", "env-value-1": "k-123"}))  # DB_PASSWORD's row gone
    api.refresh_from_db()
    assert api.secret_env == {"API_KEY": "k-123"}
    saved = AuditEvent.objects.filter(operation="infrastructure.save_service").latest("seq")
    assert "k-123" not in str(saved.params) and "hunter2" not in str(saved.params)

    new_without_value = client.post(edit_url(api), submitted(**{"env-name-1": "TOKEN"}))
    assert new_without_value.status_code == 422
    assert "The new secret TOKEN needs a value." in field_html(new_without_value.content.decode(), "env")


def test_only_the_chosen_strategys_options_are_kept(client_as, api):
    posted = submitted(strategy="rolling", strategy_options_keep_old_seconds="7", strategy_options_batch_size="2",
                       **{"strategy_options_steps-kind-0": "set_weight", "strategy_options_steps-weight-0": "10"})  # fmt: skip
    assert client_as("operator").post(edit_url(api), posted).status_code == 302
    api.refresh_from_db()
    options = api.strategy_options
    assert api.strategy == "rolling" and options["batch_size"] == 2
    assert options["keep_old_seconds"] == 30.0, "blue-green's option is not rolling's: back to its default"
    assert options["steps"] != [{"set_weight": 10, "pause": None, "analysis": None}] and len(options["steps"]) == 3  # the default steps


def test_canary_steps_rows_become_the_steps(client_as, api):
    rows = {"strategy_options_steps-kind-0": "set_weight", "strategy_options_steps-weight-0": "0",
            "strategy_options_steps-kind-1": "pause", "strategy_options_steps-seconds-1": "0",
            "strategy_options_steps-kind-2": "pause", "strategy_options_steps-seconds-2": "",
            "strategy_options_steps-kind-3": "analysis", "strategy_options_steps-count-3": "4",
            "strategy_options_steps-query-3": "up", "strategy_options_steps-source-3": "prom",
            "strategy_options_steps-failure_condition-3": "min(result) < 1",
            "strategy_options_steps-kind-4": "", "strategy_options_steps-weight-4": ""}  # fmt: skip
    response = client_as("operator").post(edit_url(api), submitted(strategy="canary", strategy_options_batch_size="9", **rows))
    assert response.status_code == 302
    api.refresh_from_db()
    steps = StrategyOptions.model_validate(api.strategy_options).steps
    assert [s.describe() for s in steps] == ["set weight 0%", "pause 0 s", "pause until promoted", "analysis (health + Prometheus)"]
    assert steps[3].analysis.count == 4 and steps[3].analysis.failure_condition == "min(result) < 1"
    assert api.strategy_options["batch_size"] == 1, "rolling's option is not canary's"


def test_healthcheck_kind_ignores_the_fields_it_does_not_use(client_as, api):
    posted = submitted(healthcheck_kind="running", healthcheck_port="9999", healthcheck_path="/ignored", **{"ports-container-0": ""})
    assert client_as("operator").post(edit_url(api), posted).status_code == 302
    api.refresh_from_db()
    check = api.parsed_spec.healthcheck
    assert (check.kind, check.port, check.path) == ("running", None, "/") and api.parsed_spec.ports == []


def test_operation_errors_land_next_to_their_fields(client_as, api):
    client = client_as("operator")
    response = client.post(edit_url(api), submitted(**{"ports-container-0": ""}))  # an http probe with no port at all
    html = response.content.decode()
    assert response.status_code == 422
    assert "an http or tcp healthcheck needs a port" in field_html(html, "healthcheck_port")
    assert 'class="errorlist nonfield"' not in html
    response = client.post(edit_url(api), submitted(resources_memory="lots", **{"ports-container-0": "70000"}))
    html = response.content.decode()
    assert "a size like &quot;256m&quot;" in field_html(html, "resources_memory")
    assert "less than or equal to 65535" in field_html(html, "ports")
    assert Service.objects.get(pk=api.pk).spec == api.spec


def test_more_rows_renders_the_values_again_without_saving(client_as, api):
    response = client_as("operator").post(edit_url(api), submitted(image="busybox:9", **{"env-name-2": "EXTRA", "env-value-2": "x"}))
    assert response.status_code == 302
    response = client_as("operator").post(edit_url(api), submitted(image="busybox:10", more_rows="1"))
    html = response.content.decode()
    assert response.status_code == 200 and has_input(html, "image", "busybox:10")
    assert 'name="env-name-3"' in html and "errorlist" not in html  # more empty rows, no validation yet
    assert Service.objects.get(pk=api.pk).parsed_spec.image == "busybox:9"


def test_roles_without_the_permission_get_no_link_and_a_403(client_as, api):
    viewer = client_as("viewer")
    assert viewer.get(edit_url(api)).status_code == 403
    assert viewer.get("/infrastructure/new-service/").status_code == 403
    assert viewer.post(edit_url(api), submitted(image="busybox:2")).status_code == 403
    assert 'id="edit-spec"' not in viewer.get(api.get_absolute_url()).content.decode()
    assert "new-service" not in viewer.get("/infrastructure/").content.decode()
    operator = client_as("operator")
    assert 'id="edit-spec"' in operator.get(api.get_absolute_url()).content.decode()
    assert f'href="{edit_url(api)}"' in operator.get(api.get_absolute_url()).content.decode()


def test_a_protected_environments_spec_change_lands_on_its_approval_request(client_as, api, env):
    env.protected = True
    env.save()
    response = client_as("operator").post(edit_url(api), submitted(image="busybox:2", approval_reason="new base image"))
    request = ApprovalRequest.objects.get(operation="infrastructure.save_service", status="pending")
    assert response.status_code == 302 and response["Location"] == request.get_absolute_url()
    assert request.reason == "new base image" and "hunter2" not in str(request.plan)
    assert Service.objects.get(pk=api.pk).parsed_spec.image == "busybox:1.36", "nothing changes before the approval"
