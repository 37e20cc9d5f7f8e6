"""Infrastructure (apps/infrastructure, docs/infrastructure.md): image builds, logs, the demo engine."""

from pathlib import Path

from .environment import DATA_DIR, env

# Image build contexts: directories under this root, or uploaded tarballs kept here until built.
INFRA_BUILD_ROOT = Path(env("INFRA_BUILD_ROOT", str(DATA_DIR / "build-contexts")))
INFRA_UPLOAD_DIR = Path(env("INFRA_UPLOAD_DIR", str(DATA_DIR / "build-uploads")))
INFRA_UPLOAD_MAX_BYTES = int(env("INFRA_UPLOAD_MAX_BYTES", str(200 * 1024 * 1024)))
INFRA_FOLLOW_LOGS_MAX_SECONDS = int(env("INFRA_FOLLOW_LOGS_MAX_SECONDS", "600"))
# The local engine bin/console starts (podman) and the demo environment uses, when none is given.
INFRA_DEMO_ENGINE_URL = env("INFRA_DEMO_ENGINE_URL", "")
# Prefix of the demo's environment names: tests seed the demo beside other runs on one engine.
INFRA_DEMO_PREFIX = env("INFRA_DEMO_PREFIX", "")
