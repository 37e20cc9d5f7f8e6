"""The infrastructure app's one domain error: messages a person can act on."""

from apps.core.errors import OperationFailed


class InfrastructureError(OperationFailed):
    """An engine refused a request, a spec is unusable, a deployment cannot proceed."""
