"""Every check an operation makes on its input comes back as invalid input (a
field error) or as the domain's own error — never as "internal error".

For every registered operation, inputs that pass its JSON Schema but mean
nothing (unknown names, empty strings, extreme numbers, nonexistent
environments, buckets and connections) are generated from that schema
(tests/support/wrong_inputs.py; hypothesis, derandomized: the same inputs on every run) and sent
through the gateway as an admin; queued jobs are run here as the worker does.
No peer is configured: "unreachable" is a domain error like any other."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from apps.core import operations
from apps.core.errors import InvalidInput, OpsError
from apps.core.gateway import invoke, run_job
from apps.core.models import Job
from tests.support.wrong_inputs import strategy

# Operations whose inputs are fine to generate but whose running time is the point.
SKIP = {"core.echo_job": "sleeps steps × step_seconds by design"}
NAMES = [op.name for op in operations.all_operations() if op.name not in SKIP]


@pytest.fixture
def admin(make_user, actor_of):
    return actor_of(make_user("admin"))


@pytest.mark.parametrize("name", NAMES)
def test_wrong_inputs_are_input_or_domain_errors(name, admin):
    op = operations.get(name)

    @settings(max_examples=25, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy(op.input.model_json_schema()))
    def call(params):
        try:
            outcome = invoke(name, admin, params)
        except OpsError as exc:
            assert "internal error" not in exc.message, f"{name}({params!r}): {exc.message}"
            return
        if outcome.status == "queued":
            run_job(str(outcome.job.pk))
            job = Job.objects.get(pk=outcome.job.pk)
            assert "internal error" not in job.error, f"{name}({params!r}) as a job: {job.error}"

    call()


def test_a_service_whose_default_healthcheck_has_no_port_is_a_field_error(admin):
    with pytest.raises(InvalidInput, match="an http or tcp healthcheck needs a port"):
        invoke("infrastructure.save_service", admin, {"environment": "anywhere", "name": "web", "image": "busybox:1.36"})


def test_an_engine_or_probe_host_on_a_metadata_address_is_a_field_error(admin):
    with pytest.raises(InvalidInput) as caught:
        invoke("infrastructure.save_environment", admin,
               {"name": "meta", "engine_url": "tcp://169.254.169.254:2375", "host_address": "169.254.169.254"})  # fmt: skip
    assert set(caught.value.errors) == {"engine_url", "host_address"}
    assert "link-local or cloud metadata" in caught.value.errors["host_address"]
