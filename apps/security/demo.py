"""Demo data for bin/console: the shipped advisories and a small project under a
`demo` scan root to scan (idempotent)."""

from pathlib import Path

from django.conf import settings
from django.utils import timezone

from apps.accounts.actors import Actor
from apps.core.gateway import invoke

from .deps import feeds
from .models import Scan, ScanRoot

FILES = {
    "requirements.txt": "Django==4.2.2\nrequests==2.30.0\nurllib3==2.0.5\n",
    "package-lock.json": '{"name": "web", "lockfileVersion": 3, "packages": {"": {"name": "web"},'
    ' "node_modules/lodash": {"version": "4.17.20"}, "node_modules/minimist": {"version": "1.2.5"}}}\n',
    "web/settings.py": 'DEBUG = True\nALLOWED_HOSTS = ["*"]\nSECRET_KEY = "demo-not-secret-do-not-use"\nINSTALLED_APPS = []\n',
    "docs/aws.md": "Example from the AWS docs: AKIAIOSFODNN7EXAMPLE\n",
}


def seed(stdout) -> None:
    for ecosystem, count in feeds.load_shipped(timezone.now()).items():
        stdout.write(f"  security: loaded {count} shipped {ecosystem} advisories")
    base = Path(settings.DATA_DIR) / "security-demo"
    for name, text in FILES.items():
        path = base / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    ScanRoot.objects.get_or_create(name="demo", defaults={"path": str(base), "description": "A small project to try the scanners on."})
    if not Scan.objects.exists():
        # The demo's findings come from real scans of the demo project, through the gateway.
        for operation in ("security.scan_secrets", "security.audit_dependencies", "security.scan_source"):
            invoke(operation, Actor.system(), {"root": "demo"}, channel="system")
        stdout.write("  security: scanned the demo project (Security → Findings)")
