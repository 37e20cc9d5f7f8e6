"""The other operations on the real engine: containers (from labels), logs
(tail and follow), rolling restart, stop and prune (risky), image builds, and
an engine reached over TCP with TLS client certificates."""

import datetime
import io
import ipaddress
import tarfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from apps.approvals import services as approvals
from apps.core.errors import InvalidInput, OperationFailed
from apps.core.gateway import invoke, run_job
from apps.core.models import Job
from apps.infrastructure.demo_images import busybox_context
from apps.infrastructure.services.images import save_upload, upload_path
from tests.support import peers
from tests.support.processes import Process, free_port, port_open

from .conftest import RUN, Poller, deploy, endpoint, labelled, web_service

pytestmark = pytest.mark.peer


def containers(actor, env, **params):
    return invoke("infrastructure.containers", actor, {"environment": env.name, **params}).result.containers


def test_containers_are_read_from_the_engine_by_label(operator, environment, images, podman):
    network = f"{environment.name}-shared"
    web_service(operator, environment, images, replicas=2, network=network, labels={"team": "shop"},
                resources={"memory": "64m", "cpus": 0.5, "pids": 100})  # fmt: skip
    deployment = deploy(operator, environment)
    seen = containers(operator, environment)
    assert sorted((c.role, c.revision) for c in seen) == [("replica", 1), ("replica", 1), ("router", None)]
    replicas = [c for c in seen if c.role == "replica"]
    assert all(c.health == "healthy" and c.in_traffic and c.state == "running" for c in replicas)
    assert {c.deployment for c in replicas} == {deployment.pk} and {c.colour for c in replicas} == {"blue"}
    assert all(c.labels["opsconsole.service"] == "web" for c in seen)
    engine_view = labelled(podman, environment, role="replica")[0].attrs
    host = engine_view["HostConfig"]
    assert (host["Memory"], host["NanoCpus"], host["PidsLimit"], host["Init"]) == (64 * 1024 * 1024, 500_000_000, 100, True)
    assert engine_view["Config"]["Labels"]["team"] == "shop"
    assert list(engine_view["NetworkSettings"]["Networks"]) == [network]

    one = containers(operator, environment, container=replicas[0].name)
    assert [c.name for c in one] == [replicas[0].name]
    with pytest.raises(OperationFailed, match="is not a container the console manages"):
        containers(operator, environment, container="some-other-container")
    assert containers(operator, environment, service="nothing-here") == []


def test_logs_tail_and_follow_live(operator, environment, images):
    ticker = ["sh", "-c", "echo hello from $HOSTNAME; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"]
    web_service(operator, environment, images, name="ticker", replicas=1, command=ticker, ports=[],
                healthcheck={"kind": "running"})  # fmt: skip
    assert deploy(operator, environment, service="ticker").status == "succeeded"
    replica = next(c for c in containers(operator, environment, service="ticker") if c.role == "replica")
    assert replica.health == "healthy"

    tail = invoke("infrastructure.container_logs", operator, {"environment": environment.name, "container": replica.name, "tail": 500})
    assert any(line.endswith(f"hello from {replica.id[:12]}") or "hello from" in line for line in tail.result.lines)

    outcome = invoke("infrastructure.follow_logs", operator, {"environment": environment.name, "container": replica.name, "seconds": 1})
    run_job(str(outcome.job.pk))
    job = Job.objects.get(pk=outcome.job.pk)
    lines = list(job.log_lines.values_list("text", flat=True))  # since = this second: may include the greeting
    assert job.status == "succeeded" and job.result["lines"] == len(lines)
    assert len([line for line in lines if " tick " in line]) >= 2

    with pytest.raises(OperationFailed, match="is not a container the console manages"):
        invoke("infrastructure.container_logs", operator, {"environment": environment.name, "container": "some-other-container"})


def test_rolling_restart_replaces_every_replica_without_a_failed_request(operator, environment, images):
    web_service(operator, environment, images, replicas=2)
    first = deploy(operator, environment)
    address = endpoint(operator, environment)
    before = {c.name for c in containers(operator, environment) if c.role == "replica"}
    with Poller(address) as poller:
        restart = deploy(operator, environment, operation="infrastructure.restart")
    assert (restart.status, restart.kind, restart.strategy, restart.revision) == ("succeeded", "restart", "rolling", first.revision)
    assert poller.failures == [] and set(poller.seen) == {"v1"}
    after = {c.name for c in containers(operator, environment) if c.role == "replica"}
    assert len(after) == 2 and not (after & before)


def approve_and_run(outcome, make_user, actor_of) -> Job:
    assert outcome.status == "pending"
    approvals.vote(outcome.approval.pk, actor_of(make_user("approver")), "approve")
    job = Job.objects.get(approval_id=outcome.approval.pk)
    run_job(str(job.pk))
    job.refresh_from_db()
    return job


def test_stop_and_prune_are_risky(operator, environment, images, podman, make_user, actor_of):
    web_service(operator, environment, images, replicas=1)
    deploy(operator, environment)
    outcome = invoke("infrastructure.stop", operator, {"environment": environment.name, "service": "web"})
    assert outcome.approval.scope == f"environment:{environment.name}"
    assert all(c.status == "running" for c in labelled(podman, environment)), "nothing stops before approval"
    job = approve_and_run(outcome, make_user, actor_of)
    assert job.status == "succeeded" and len(job.result["stopped"]) == 2
    assert {c.status for c in labelled(podman, environment)} == {"exited"}

    job = approve_and_run(invoke("infrastructure.prune", operator, {"environment": environment.name}), make_user, actor_of)
    assert job.status == "succeeded" and len(job.result["containers"]) == 2
    assert labelled(podman, environment) == []


def test_image_inspect_shows_names_not_values(make_user, actor_of, environment, images, podman):
    tag = f"localhost/{RUN}-inspected:1"
    # the run's prefix in a label: podman's storage is shared, the same image built by another run would carry its tag too
    dockerfile = f"FROM {images.base}\nENV API_TOKEN=not-for-your-eyes\nLABEL team=shop run={RUN}\nEXPOSE 8080\nUSER 1000\n"
    podman.client().images.build(fileobj=busybox_context({}, dockerfile), custom_context=True, tag=tag, rm=True)
    viewer = actor_of(make_user("viewer"))
    info = invoke("infrastructure.image", viewer, {"environment": environment.name, "image": tag}).result
    assert (info.tags, info.user, info.exposed_ports) == ([tag], "1000", ["8080/tcp"]) and "team" in info.label_names
    assert info.id == podman.client().images.get(tag).id and info.size > 0
    assert "API_TOKEN" in info.env_names and "not-for-your-eyes" not in info.model_dump_json()
    with pytest.raises(OperationFailed, match="not found on the engine"):
        invoke("infrastructure.image", viewer, {"environment": environment.name, "image": f"localhost/{RUN}-absent:1"})


def test_build_image_from_a_directory_and_from_an_upload(operator, environment, images, podman, settings, tmp_path):
    settings.INFRA_BUILD_ROOT = tmp_path / "contexts"
    settings.INFRA_UPLOAD_DIR = tmp_path / "uploads"
    app = settings.INFRA_BUILD_ROOT / "app"
    app.mkdir(parents=True)
    # the run's prefix in the step: podman's storage is shared, a step another run built would come from its cache
    (app / "Dockerfile").write_text(f'FROM {images.base}\nRUN ["/bin/echo", "built by the console {RUN}"]\n')
    tag = f"localhost/{RUN}-built:1"
    outcome = invoke("infrastructure.build_image", operator, {"environment": environment.name, "tag": tag, "context_dir": "app"})
    run_job(str(outcome.job.pk))
    job = Job.objects.get(pk=outcome.job.pk)
    assert job.status == "succeeded", job.error
    log = list(job.log_lines.values_list("text", flat=True))
    assert f"built by the console {RUN}" in log and any(line.startswith("STEP 2/") and "RUN" in line for line in log)
    image = podman.client().images.get(tag)
    assert image.labels["opsconsole.environment"] == environment.name
    assert job.result["image_id"] == image.id.removeprefix("sha256:")

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = f'FROM {images.base}\nRUN ["/bin/false"]\n'.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    upload = save_upload([buffer.getvalue()])
    outcome = invoke("infrastructure.build_image", operator, {"environment": environment.name, "tag": f"{tag}-bad", "upload": upload})
    run_job(str(outcome.job.pk))
    job = Job.objects.get(pk=outcome.job.pk)
    assert job.status == "failed" and "The build of" in job.error and "/bin/false" in job.error
    assert not upload_path(upload).exists(), "an uploaded context is removed once used"

    outcome = invoke("infrastructure.build_image", operator, {"environment": environment.name, "tag": tag, "context_dir": "../../etc"})
    run_job(str(outcome.job.pk))
    assert "Build contexts must be directories under" in Job.objects.get(pk=outcome.job.pk).error
    with pytest.raises(InvalidInput, match="either context_dir or upload"):
        invoke("infrastructure.build_image", operator, {"environment": environment.name, "tag": tag})


def _certificate(subject: str, key, issuer=None, issuer_key=None, *, ca=False, ip=None):
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )  # fmt: skip
    if ip:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def _pem(obj) -> str:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM).decode()
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


@pytest.fixture
def tls_engine(podman, tmp_path):
    """The podman socket behind a TLS listener that demands a client certificate signed by our CA (socat)."""
    socat = peers.require_binary("socat")
    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _certificate("opsconsole test CA", ca_key, ca=True)
    server = _certificate("127.0.0.1", server_key, ca.subject, ca_key, ip="127.0.0.1")
    client = _certificate("console", client_key, ca.subject, ca_key)
    (tmp_path / "ca.pem").write_text(_pem(ca))
    (tmp_path / "server.pem").write_text(_pem(server) + _pem(server_key))
    port = free_port()
    listen = f"OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={tmp_path / 'server.pem'},cafile={tmp_path / 'ca.pem'},verify=1"
    proc = Process("socat", [socat, listen, f"UNIX-CONNECT:{podman.socket}"])
    proc.wait_until(lambda: port_open(port), what="listening")
    yield {"url": f"tcp://127.0.0.1:{port}", "ca": _pem(ca), "cert": _pem(client), "key": _pem(client_key)}
    proc.stop()


def test_engine_over_tcp_with_tls_client_certificates(admin, tls_engine, images):
    params = {"name": f"{RUN}-tls", "engine_url": tls_engine["url"], "router_image": images.router, "timeout_seconds": 5,
              "tls_ca_cert": tls_engine["ca"], "tls_client_cert": tls_engine["cert"],
              "tls_client_key": tls_engine["key"].replace("\n", "")}  # fmt: skip  # as a password box sends it
    invoke("infrastructure.save_environment", admin, params)
    found = {e.name: e for e in invoke("infrastructure.environments", admin, {"check": True}).result.environments}
    assert found[f"{RUN}-tls"].reachable is True and "API 1.41" in found[f"{RUN}-tls"].engine_version
    assert found[f"{RUN}-tls"].tls is True

    invoke("infrastructure.save_environment", admin, {**params, "name": f"{RUN}-nocert", "tls_client_cert": "", "tls_client_key": ""})
    found = {e.name: e for e in invoke("infrastructure.environments", admin, {"check": True}).result.environments}
    assert found[f"{RUN}-nocert"].reachable is False and found[f"{RUN}-nocert"].error
    assert tls_engine["key"] not in str(invoke("infrastructure.environments", admin, {}).result.model_dump())
