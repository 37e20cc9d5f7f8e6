from apps.core.errors import OpsError


class ScanError(OpsError):
    """A scan cannot run as asked: a path outside the scan roots, an unsafe or
    oversized archive, a directory that is not a git repository, ... The message
    says what to change."""

    status_code = 400
