"""The demo's default policy: every risky operation waits for one approval, for at most a day."""

from .models import ApprovalPolicy


def seed(stdout) -> None:
    ApprovalPolicy.objects.get_or_create(operation="*", scope="", defaults={"quorum": 1, "expiry_hours": 24})
