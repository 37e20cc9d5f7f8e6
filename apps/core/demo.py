from apps.approvals.models import ApprovalPolicy


def seed(stdout) -> None:
    ApprovalPolicy.objects.get_or_create(operation="*", scope="", defaults={"quorum": 1, "expiry_hours": 24})
