"""The infrastructure pages: what each role sees, forms that call the operations,
errors as messages, empty states, bounded queries."""

import io
import tarfile

import pytest
from django.urls import reverse

from apps.core.models import Job
from apps.infrastructure.models import Deployment, Environment, Runbook

from .conftest import deploy, web_service

pytestmark = pytest.mark.peer


def test_overview_empty_state_and_roles(client_as):
    page = client_as("viewer").get("/infrastructure/")
    assert page.status_code == 200 and b"No environments yet" in page.content and b"No deployments yet" in page.content
    assert client_as("auditor").get("/infrastructure/").status_code == 403


def test_service_page_deploy_form_and_redirect_to_the_deployment(client_as, operator, environment, images):
    web_service(operator, environment, images, replicas=1)
    first = deploy(operator, environment)
    client = client_as("operator")
    page = client.get(f"/infrastructure/{environment.name}/web/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="deploy-form"' in html and f"r{first.revision.number}" in html
    assert html.count("in traffic") == 1 and "healthy" in html, "the containers table is read from the engine"

    response = client.post(f"/infrastructure/{environment.name}/web/deploy/", {"image": images.web["v2"], "strategy": "blue_green"})
    queued = Deployment.objects.exclude(pk=first.pk).get()
    assert response.status_code == 302 and response["Location"] == queued.get_absolute_url()
    assert (queued.status, queued.strategy, queued.revision.spec["image"]) == ("queued", "blue_green", images.web["v2"])
    detail = client.get(queued.get_absolute_url()).content.decode()
    assert f'ws-connect="/ws/live/deployment.{queued.pk}/"' in detail and 'id="abort"' in detail
    assert "requested by" in detail

    aborted = client.post(reverse("infrastructure:abort", args=[queued.pk]), {"reason": "wrong tag"}, follow=True)
    queued.refresh_from_db()
    assert queued.status == "aborted" and Job.objects.get(pk=queued.job_id).status == "cancelled"
    assert b"Abort requested" in aborted.content


def test_protected_deploy_from_the_page_waits_for_approval(client_as, operator, environment, images):
    Environment.objects.filter(pk=environment.pk).update(protected=True)
    web_service(operator, environment, images, replicas=1)
    response = client_as("operator").post(f"/infrastructure/{environment.name}/web/deploy/", {"reason": "release 1"}, follow=True)
    deployment = Deployment.objects.get()
    assert response.redirect_chain[-1][0] == deployment.get_absolute_url()
    html = response.content.decode()
    assert "pending approval" in html and f"request #{deployment.approval_id}" in html and "needs approval" in html


def test_viewers_cannot_deploy_and_see_why(client_as, operator, environment, images):
    web_service(operator, environment, images, replicas=1)
    response = client_as("viewer").post(f"/infrastructure/{environment.name}/web/deploy/", {}, follow=True)
    assert b"may not run infrastructure.deploy" in response.content
    assert not Deployment.objects.exists()


def test_deployment_list_filters_pages_and_bounded_queries(client_as, operator, environment, images, django_assert_max_num_queries):
    web_service(operator, environment, images, replicas=1)
    deploy(operator, environment)
    Deployment.objects.filter().update(status="failed")
    for _ in range(30):
        deploy_record = Deployment.objects.first()
        deploy_record.pk = None
        deploy_record.status = "succeeded"
        deploy_record.save()
    client = client_as("viewer")
    with django_assert_max_num_queries(12):
        page = client.get("/infrastructure/deployments/")
    assert page.status_code == 200 and page.content.decode().count('id="deployment-row-') == 25
    assert b"Page 1 of 2" in page.content
    failed = client.get("/infrastructure/deployments/?status=failed").content.decode()
    assert failed.count('id="deployment-row-') == 1
    assert b"No deployments with status paused yet" in client.get("/infrastructure/deployments/?status=paused").content


def test_container_logs_page(client_as, operator, environment, images):
    web_service(operator, environment, images, replicas=1, command=["sh", "-c", "echo starting up; exec httpd -f -p 8080 -h /www"])
    deploy(operator, environment)
    client = client_as("operator")
    replica = next(c for c in client.get(f"/infrastructure/{environment.name}/web/").context["containers"] if c.role == "replica")
    page = client.get(f"/infrastructure/{environment.name}/containers/{replica.name}/logs/?tail=50")
    assert page.status_code == 200 and b"starting up" in page.content
    follow = client.post(f"/infrastructure/{environment.name}/containers/{replica.name}/logs/", {"seconds": "5"})
    assert follow.status_code == 302 and Job.objects.get(operation="infrastructure.follow_logs").params["seconds"] == 5
    missing = client.get(f"/infrastructure/{environment.name}/containers/not-ours/logs/")
    assert missing.status_code == 404 and b"is not a container the console manages" in missing.content


def test_runbook_pages(client_as, tmp_path, db):
    Runbook.objects.create(name="greet", argv=["/bin/echo", "{name}"], parameters=[{"name": "name", "pattern": "[a-z]+"}],
                           working_dir=str(tmp_path), description="Say hello.")  # fmt: skip
    client = client_as("operator")
    listing = client.get("/infrastructure/runbooks/")
    assert b"greet" in listing.content and b"/bin/echo {name}" in listing.content
    refused = client.post("/infrastructure/runbooks/greet/", {"name": "Robert'); DROP TABLE"})
    assert refused.status_code == 422 and b"must match [a-z]+" in refused.content
    started = client.post("/infrastructure/runbooks/greet/", {"name": "world"})
    job = Job.objects.get(operation="infrastructure.run_runbook")
    assert started.status_code == 302 and started["Location"] == job.get_absolute_url()
    assert job.params == {"runbook": "greet", "params": {"name": "world"}}
    assert client_as("viewer").get("/infrastructure/runbooks/greet/").status_code == 403


def test_build_page_uploads_a_context(client_as, environment, settings, tmp_path):
    settings.INFRA_UPLOAD_DIR = tmp_path
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = 12
        tar.addfile(info, io.BytesIO(b"FROM scratch"))
    buffer.seek(0)
    buffer.name = "context.tar"
    client = client_as("operator")
    assert client.get("/infrastructure/build/").status_code == 200
    response = client.post("/infrastructure/build/", {"environment": environment.name, "tag": "localhost/demo:1", "context": buffer})
    job = Job.objects.get(operation="infrastructure.build_image")
    assert response.status_code == 302 and response["Location"] == job.get_absolute_url()
    assert (tmp_path / f"{job.params['upload']}.tar").read_bytes().startswith(b"Dockerfile")


def test_demo_data_is_idempotent(db, podman, settings):
    from io import StringIO

    from apps.approvals.models import ApprovalPolicy
    from apps.infrastructure import demo
    from apps.infrastructure.demo_images import WEB

    settings.INFRA_DEMO_ENGINE_URL = podman.url
    demo.seed(StringIO())
    out = StringIO()
    demo.seed(out)
    assert sorted(Environment.objects.values_list("name", flat=True)) == ["production", "staging"]
    assert ApprovalPolicy.objects.filter(operation="infrastructure.deploy", scope="environment:production").exists()
    assert Environment.objects.get(name="staging").services.get(name="web").parsed_spec.image == f"{WEB}:v1"
    assert f"{WEB}:v3" in out.getvalue() and podman.client().images.get(f"{WEB}:v1")  # built locally, no registry
    assert Runbook.objects.filter(name="uptime").exists()


def test_rollback_is_offered_only_to_revisions_that_served(client_as, operator, environment, images):
    web_service(operator, environment, images, replicas=1)
    deploy(operator, environment)  # r1 serves
    deploy(operator, environment, image=images.web["v2"])  # r2 serves
    failed = deploy(operator, environment, image="localhost/opsconsole-no-such-image:1")  # r3 never served
    assert failed.status != "succeeded"
    html = client_as("operator").get(f"/infrastructure/{environment.name}/web/").content.decode()
    assert "Roll back to r1" in html
    assert "Roll back to r2" not in html  # it serves now
    assert "Roll back to r3" not in html  # the server would refuse: it never served


def test_service_defined_through_the_generic_form_keeps_its_secret(client_as, environment, images):
    client = client_as("operator")
    form = {
        "environment": environment.name, "name": "api", "image": images.web["v1"], "command": "httpd\n-f\n-p\n8080\n-h\n/www",
        "ports": '[{"container": 8080}]', "replicas": "2", "secret_env": '{"DB_PASSWORD": "hunter2-" }', "strategy": "canary",
        "env-key-0": "MODE", "env-value-0": "prod", "env-key-1": "", "env-value-1": "",  # key/value rows, not JSON
        "labels-key-0": "", "labels-value-0": "", "healthcheck": '{"path": "/version"}', "resources": "{}",
        "strategy_options": '{"steps": [{"set_weight": 50}, {"pause": {}}, {"set_weight": 100}]}',
    }  # fmt: skip
    response = client.post("/operations/infrastructure.save_service/", form)
    assert response.status_code == 200, response.content.decode()[:2000]
    service = environment.services.get(name="api")
    assert service.secret_env == {"DB_PASSWORD": "hunter2-"} and service.parsed_spec.command == ["httpd", "-f", "-p", "8080", "-h", "/www"]
    assert service.parsed_spec.env == {"MODE": "prod"} and service.parsed_spec.labels == {}
    assert b"hunter2-" not in response.content and b"DB_PASSWORD" in response.content
    form_page = client.get("/operations/infrastructure.save_service/").content.decode()
    assert f'<option value="{environment.name}">' in form_page  # the environments that exist, not free text
    assert 'name="env-key-0"' in form_page and 'aria-label="Env key 1"' in form_page
    page = client.get(service.get_absolute_url())
    assert b"hunter2-" not in page.content and b"DB_PASSWORD" in page.content


def test_deployment_page_reads_at_a_glance(client_as, operator, environment, images):
    steps = [{"set_weight": 50}, {"analysis": {"count": 2, "interval_seconds": 0.1}}, {"set_weight": 100}]
    web_service(operator, environment, images, replicas=2, strategy="canary", options={"steps": steps})
    deploy(operator, environment)
    second = deploy(operator, environment, image=images.web["v2"])
    html = client_as("viewer").get(second.get_absolute_url()).content.decode()
    changes = html.split('id="deployment-changes"', 1)[1].split("</section>", 1)[0]
    assert f"image: &quot;{images.web['v1']}&quot;" in changes and f"image: &quot;{images.web['v2']}&quot;" in changes
    assert 'class="removed"' in changes and 'class="added"' in changes
    strategy = html.split('id="deployment-strategy"', 1)[1].split("</section>", 1)[0]
    assert "Canary options" in strategy and "Drain_seconds" in strategy
    assert "Keep_old_seconds" not in strategy and "Batch_size" not in strategy  # blue-green's and rolling's, not canary's
    assert strategy.count('class="step done"') == 3  # set weight 50 %, analysis, set weight 100 %
    analysis = html.split('id="deployment-analysis"', 1)[1].split("</section>", 1)[0]
    assert 'aria-label="health: 2 measurement(s), successful; from 0 to 1"' in analysis  # a chart per metric, server-drawn
    assert analysis.count('class="phase-successful"') == 2
    assert f'href="/jobs/{second.job_id}/" id="deployment-job">infrastructure.deploy job · succeeded' in html
    assert "&quot;image&quot;:" not in html  # no JSON dumps: one line per field
