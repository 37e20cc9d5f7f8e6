"""security.scan_image reading images straight from a real engine: podman's Docker
Engine API service of this run (tests/infrastructure/conftest.py). The images are
built here from the run's busybox image: one with every config problem and planted
secrets, one clean. The scan inspects through infrastructure.image and streams the
engine's export (`docker save`) into the tar scanner."""

import os
import tracemalloc

import pytest

from apps.audit.models import AuditEvent
from apps.core import gateway
from apps.core.errors import PermissionDenied
from apps.infrastructure.demo_images import busybox_context
from apps.security.models import Finding, Scan
from tests.infrastructure.conftest import RUN

from .samples import ALNUM, DIG, UP, Gen

g = Gen("engine-images")
ENV_TOKEN = "ghp_" + g(ALNUM, 36)
LABEL_WEBHOOK = f"https://hooks.slack.com/services/T{g(UP + DIG, 9)}/B{g(UP + DIG, 9)}/{g(ALNUM, 24)}"
FILE_STRIPE = "sk_live_" + g(ALNUM, 24)
FILE_DB_PASSWORD = g(ALNUM, 16)
SECRETS = (ENV_TOKEN, LABEL_WEBHOOK, FILE_STRIPE, FILE_DB_PASSWORD)

RISKY = """FROM {base}
COPY app /app
ENV GITHUB_TOKEN={token}
LABEL com.example.alerts={webhook}
EXPOSE 80
"""
CLEAN = """FROM {base}
COPY app /app
USER 1000:1000
HEALTHCHECK --interval=30s CMD ["/bin/true"]
EXPOSE 8080
"""
CONFIG_RULES = {
    "image-runs-as-root",
    "image-latest-tag",
    "image-secret-in-env",
    "image-secret-in-label",
    "image-no-healthcheck",
    "image-privileged-port",
}


def build(podman, tag: str, dockerfile: str, files: dict[str, bytes]) -> str:
    """Build on the engine behind the console's back, as a CI pipeline would have."""
    podman.client().images.build(fileobj=busybox_context(files, dockerfile), custom_context=True, tag=tag, rm=True)
    return tag


@pytest.fixture(scope="module")
def risky_image(podman, images):
    files = {
        "app/.env": f"STRIPE_KEY={FILE_STRIPE}\n".encode(),
        "app/settings.py": f'DEBUG = False\nDATABASE_URL = "postgres://app:{FILE_DB_PASSWORD}@db.internal:5432/app"\n'.encode(),
    }
    dockerfile = RISKY.format(base=images.base, token=ENV_TOKEN, webhook=LABEL_WEBHOOK)
    return build(podman, f"localhost/{RUN}-scanned:latest", dockerfile, files)


@pytest.fixture(scope="module")
def clean_image(podman, images):
    return build(podman, f"localhost/{RUN}-scanned-clean:1.4.2", CLEAN.format(base=images.base), {"app/README": b"nothing to see\n"})


def scan_on_engine(run_scan, user, environment, reference):
    return run_scan(user, "security.scan_image", {"environment": environment.name, "reference": reference})


def test_risky_image_on_the_engine_reports_config_and_files(environment, risky_image, make_user, run_scan):
    user = make_user("operator")
    job, scan = scan_on_engine(run_scan, user, environment, risky_image)
    assert job.status == "succeeded", job.error
    assert scan.target == f"image:{environment.name}/{risky_image}"
    found = {(f.rule, f.path, f.line) for f in Finding.objects.filter(target=scan.target)}
    assert found == {
        ("image-runs-as-root", "image config", None),
        ("image-latest-tag", "image config", None),
        ("image-secret-in-env", "image config", None),
        ("image-secret-in-label", "image config", None),
        ("image-no-healthcheck", "image config", None),
        ("image-privileged-port", "image config", None),
        ("stripe-secret-key", "/app/.env", 1),
        ("database-url-password", "/app/settings.py", 2),
    }
    env_secret = Finding.objects.get(target=scan.target, rule="image-secret-in-env")
    assert "GITHUB_TOKEN" in env_secret.title and env_secret.severity == "high"
    assert "80/tcp" in Finding.objects.get(target=scan.target, rule="image-privileged-port").title
    for finding in Finding.objects.all():
        for secret in SECRETS:
            assert secret not in f"{finding.preview} {finding.title} {finding.detail} {finding.path}"
    assert scan.stats["skipped"] == {"binary": 1}  # busybox itself
    # every layer's files were read, from the engine's export: busybox's layer and the app layer
    assert scan.stats["files"] == 2 and job.progress == 100
    log = list(job.log_lines.values_list("text", flat=True))
    assert any(line.startswith(f"{risky_image} is sha256:") for line in log)

    inspected = AuditEvent.objects.get(operation="infrastructure.image")
    assert (inspected.channel, inspected.outcome, inspected.actor) == ("worker", "ok", user.username)
    assert inspected.target == f"{environment.name}/{risky_image}" and inspected.request_id == job.request_id
    scans = AuditEvent.objects.filter(operation="security.scan_image").order_by("seq")
    assert [(e.channel, e.outcome) for e in scans] == [("web", "ok"), ("worker", "ok")]
    assert scans[0].params == {"staged": None, "upload_id": None, "environment": environment.name, "reference": risky_image}


def test_clean_image_on_the_engine_reports_nothing(environment, clean_image, make_user, run_scan):
    job, scan = scan_on_engine(run_scan, make_user("operator"), environment, clean_image)
    assert job.status == "succeeded", job.error
    assert not Finding.objects.filter(target=scan.target).exists()
    assert scan.stats["files"] == 1 and scan.stats["skipped"] == {"binary": 1}


def test_the_export_is_streamed_not_held(environment, podman, images, make_user, run_scan):
    """A 48 MB image scans with a small fraction of its size in memory (and nothing written)."""
    size = 48 << 20
    tag = build(podman, f"localhost/{RUN}-scanned-big:1", f"FROM {images.base}\nCOPY data /data\n", {"data/dump.log": os.urandom(size)})
    user = make_user("operator")
    tracemalloc.start()
    try:
        job, scan = scan_on_engine(run_scan, user, environment, tag)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert job.status == "succeeded", job.error
    assert scan.stats["skipped"] == {"larger than 5 MB": 1, "binary": 1}
    assert peak < size // 4, f"peak {peak >> 20} MB while scanning a {size >> 20} MB image"


def test_the_infrastructure_permission_is_not_bypassed(environment, clean_image, make_user, run_scan, without_permission, actor_of):
    with pytest.raises(PermissionDenied):  # the security rule: viewers do not scan
        gateway.invoke("security.scan_image", actor_of(make_user("viewer")), {"environment": environment.name, "reference": clean_image})
    user = make_user("operator")
    without_permission("operator", "core.run_read_ops")  # what infrastructure.image needs
    job, scan = scan_on_engine(run_scan, user, environment, clean_image)
    assert job.status == "failed" and "core.run_read_ops" in job.error
    assert scan is None and not Scan.objects.exists()
    assert AuditEvent.objects.get(operation="infrastructure.image").outcome == "denied"
    assert AuditEvent.objects.get(operation="security.scan_image", channel="worker").outcome == "denied"


def test_unknown_image_and_environment(environment, make_user, run_scan):
    user = make_user("operator")
    job, scan = scan_on_engine(run_scan, user, environment, f"localhost/{RUN}-missing:1")
    assert job.status == "failed" and "not found on the engine" in job.error and scan is None
    job, scan = run_scan(user, "security.scan_image", {"environment": "nowhere", "reference": "app:1"})
    assert job.status == "failed" and "no environment named 'nowhere'" in job.error and scan is None
