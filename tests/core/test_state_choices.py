"""The generic operation forms offer what exists: selects of environments, runbooks, monitoring
sources, dashboards and comms connectors; services suggested with the environments they run in.
A name that does not exist is still refused, next to its field."""

import pytest

from apps.comms.models import Connector
from apps.infrastructure.models import Environment, Runbook, Service
from apps.monitoring.models import Dashboard, PrometheusSource

pytestmark = pytest.mark.django_db


@pytest.fixture
def state(db):
    for name in ("staging", "production"):
        env = Environment.objects.create(name=name, engine_url="unix:///nowhere.sock")
        Service.objects.create(environment=env, name="web", spec={})
    Service.objects.create(environment=Environment.objects.get(name="staging"), name="worker", spec={})
    Runbook.objects.create(name="uptime", argv=["uptime"], working_dir="/tmp")
    source = PrometheusSource.objects.create(name="default", base_url="http://127.0.0.1:9")
    Dashboard.objects.create(slug="golden", title="Golden signals", source=source)
    Connector.objects.create(name="ops-slack", kind="slack")


def test_selects_and_suggestions_of_current_state(client_as, state):
    client = client_as("operator")
    deploy = client.get("/operations/infrastructure.deploy/").content.decode()
    assert '<option value="staging">staging</option>' in deploy  # environments: a select
    assert 'list="id_service-names"' in deploy  # services: suggested, with where they run
    assert '<option value="web">in production, staging</option>' in deploy and '<option value="worker">in staging</option>' in deploy
    assert '<option value="uptime">uptime</option>' in client.get("/operations/infrastructure.run_runbook/").content.decode()
    assert '<option value="default" selected>default</option>' in client.get("/operations/monitoring.query/").content.decode()
    assert '<option value="golden">Golden signals</option>' in client.get("/operations/monitoring.dashboard/").content.decode()
    assert '<option value="ops-slack">ops-slack</option>' in client.get("/operations/comms.post_message/").content.decode()


def test_unknown_names_are_field_errors(client_as, state):
    client = client_as("operator")
    response = client.post("/operations/infrastructure.deploy/", {"environment": "staging", "service": "nope"})
    assert response.status_code == 422
    service_field = response.content.decode().split('id="id_service"')[1].split('class="field"')[0]
    assert "has no service named &#x27;nope&#x27;" in service_field  # from the operation, next to its field
    runbook = client.post("/operations/infrastructure.run_runbook/", {"runbook": "nope"})
    assert runbook.status_code == 422 and "Select a valid choice. nope is not one of the available choices." in runbook.content.decode()
