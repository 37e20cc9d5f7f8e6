"""Demo S3 for bin/console: when moto's server is installed, a connection named
`demo-local-s3` to the in-memory S3 that bin/console starts (`manage.py demo_s3`),
so storage, backups and bucket scans have something to show. Idempotent."""

import importlib.util

from django.conf import settings

from .models import Connection

DEMO_CONNECTION = "demo-local-s3"


def moto_installed() -> bool:
    return importlib.util.find_spec("moto") is not None


def seed(stdout) -> None:
    if not moto_installed():
        stdout.write("  storage: moto is not installed (pip install 'moto[server]'): no demo S3 connection.")
        return
    # moto accepts any key: these are labels, not secrets.
    _, created = Connection.objects.get_or_create(
        name=DEMO_CONNECTION,
        defaults={"endpoint_url": f"http://127.0.0.1:{settings.STORAGE_DEMO_S3_PORT}", "addressing_style": "path",
                  "credentials": Connection.STORED, "access_key_id": "demo", "secret_access_key": "demo"},
    )  # fmt: skip
    if created:
        stdout.write(f"  storage: connection {DEMO_CONNECTION} -> the demo's in-memory S3 (moto) on port {settings.STORAGE_DEMO_S3_PORT}")
