"""Reading the environment: the helpers every settings module uses, which environment this is
(development, production, test) and the data directory the console writes to."""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


ENVIRONMENTS = ("development", "production", "test")
ENVIRONMENT = env("OPSCONSOLE_ENV", "development").strip().lower()  # "Production" is production
if ENVIRONMENT not in ENVIRONMENTS:
    # Never fall back to development: a typo would run production without its safety checks.
    raise ImproperlyConfigured(f"OPSCONSOLE_ENV={env('OPSCONSOLE_ENV')!r} is not one of {', '.join(ENVIRONMENTS)}; refusing to start.")
PRODUCTION = ENVIRONMENT == "production"
DATA_DIR = Path(env("OPSCONSOLE_DATA_DIR", str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)
