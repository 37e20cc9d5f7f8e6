"""The monitoring app's one error class: what went wrong with a Prometheus or
Alertmanager call, said so a person can act on it."""

from apps.core.errors import OperationFailed


class MonitoringError(OperationFailed):
    """Prometheus or Alertmanager answered with an error (bad PromQL, a query
    timeout, refused credentials, an unknown silence), or a request was refused
    before it was sent (a range too long, an unsafe source URL)."""

    def __init__(self, message: str, status_code: int = 400):
        super().__init__(message)
        self.status_code = status_code
