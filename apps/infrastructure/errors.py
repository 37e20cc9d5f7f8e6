"""The infrastructure app's one domain error: messages a person can act on."""

from apps.core.errors import OperationFailed


class InfrastructureError(OperationFailed):
    """An engine refused a request, a spec is unusable, a deployment cannot proceed;
    `status_code` 404 when what the request names does not exist."""

    def __init__(self, message: str, status_code: int = 500):
        super().__init__(message)
        self.status_code = status_code
