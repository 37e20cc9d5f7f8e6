"""The infrastructure operations, registered when this package is auto-discovered:
environments and services, containers, images, deployments, runbooks."""

from . import containers, deploy, environments, images, runbooks  # noqa: F401 - each module registers its operations
