"""Errors the gateway and the domains raise. Each carries a message a person
(or an agent) can act on; none carries a stack trace to the user."""

from __future__ import annotations


class OpsError(Exception):
    """Base of every error the console shows to a user."""

    outcome = "failed"  # the audit outcome this error maps to
    status_code = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UnknownOperation(OpsError):
    status_code = 404


class PermissionDenied(OpsError):
    outcome = "denied"
    status_code = 403


class RateLimited(OpsError):
    outcome = "denied"
    status_code = 429


class InvalidInput(OpsError):
    """The parameters did not validate; `errors` maps each field to its message."""

    status_code = 422

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        detail = "; ".join(f"{field}: {msg}" if field else msg for field, msg in errors.items())
        super().__init__(f"Invalid input — {detail}")


class PeerUnavailable(OpsError):
    """A connector's peer is down or its circuit breaker is open."""

    status_code = 503


class OperationFailed(OpsError):
    """The operation ran and failed for a reason stated in the message."""

    status_code = 500
