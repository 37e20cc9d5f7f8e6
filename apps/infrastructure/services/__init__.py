"""The infrastructure operations, registered when this package is auto-discovered:
engines, services and containers; deployments; runbooks."""

from . import deploy, engine, runbooks  # noqa: F401 - each module registers its operations
