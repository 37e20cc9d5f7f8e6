"""The one domain error of comms: a channel refused, failed or is not configured."""

from __future__ import annotations

from apps.core.errors import OperationFailed, PeerUnavailable


class CommsError(OperationFailed):
    """A message could not be delivered (or a channel could not be managed).

    `transient` errors (peer down, rate limited, 5xx) are worth another attempt,
    `retry_after` seconds from now when the peer said so; the rest (bad
    credentials, unknown channel, a refused target) need a person to fix them.
    """

    def __init__(self, message: str, *, transient: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after


class SendTimedOut(PeerUnavailable):
    """A call to a peer timed out. Never retried in the same attempt (a hung peer would make each try wait as long
    again); a delivery goes back to the worker's retry schedule. `outcome_unknown`: the request had left, so the
    peer may have acted on it — a retry can repeat the message unless it carries an idempotency key."""

    transient = True

    def __init__(self, message: str, *, outcome_unknown: bool):
        super().__init__(message)
        self.outcome_unknown = outcome_unknown
