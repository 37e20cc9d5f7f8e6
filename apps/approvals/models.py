"""Four-eyes approval of risky operations."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from apps.core.fields import EncryptedJSONField


class ApprovalPolicy(models.Model):
    """How calls of an operation (optionally in one scope, e.g. an environment) are approved.

    The most specific enabled policy wins: (operation, scope), then (operation, ""),
    then ("*", ""). With none, a risky call needs one approval within the default expiry.
    """

    operation = models.CharField(max_length=100, help_text='An operation name, or "*" for every risky operation.')
    scope = models.CharField(max_length=200, blank=True, help_text='e.g. "environment:production"; empty = any.')
    requires_approval = models.BooleanField(default=True)
    quorum = models.PositiveSmallIntegerField(default=1)
    expiry_hours = models.PositiveIntegerField(default=24)
    wait_minutes = models.PositiveIntegerField(default=0, help_text="Delay between approval and execution.")
    break_glass_admins = models.BooleanField(default=True, help_text="An admin may run one call without approval, with a reason.")
    break_glass_tokens = models.BooleanField(default=False, help_text="Break-glass is allowed through an admin-scoped API token too.")
    group_quorum = models.JSONField(
        default=dict, blank=True, help_text='Approvals needed from each group, e.g. {"sre": 1, "security": 1}; distinct people.'
    )

    class Meta:
        unique_together = [("operation", "scope")]
        verbose_name_plural = "approval policies"
        permissions = [("manage_policies", "Manage approval policies")]

    def __str__(self) -> str:
        return f"{self.operation} {self.scope or '(any scope)'}: quorum {self.quorum}"


class ApprovalRequestQuerySet(models.QuerySet):
    def awaiting_vote_of(self, actor) -> models.QuerySet:
        """Pending requests `actor` may still vote on: an approver's, not their own, not voted on yet
        (the same rule the vote enforces)."""
        if actor.user is None or actor.token is not None or not actor.has_perm("approvals.approve_requests"):
            return self.none()
        return self.filter(status=ApprovalRequest.PENDING).exclude(requested_by=actor.user.pk).exclude(votes__voter=actor.user.pk)


class ApprovalRequest(models.Model):
    PENDING, APPROVED, REJECTED, EXPIRED, DRIFTED = "pending", "approved", "rejected", "expired", "drifted"
    # The credential that asked (an OAuth agent) was revoked before a decision: nobody voted it down, no time ran out.
    WITHDRAWN = "withdrawn"
    # A break-glass run: it ran without approval; the review stays open until two other people acknowledge it.
    REVIEW, REVIEWED = "review", "reviewed"
    STATUSES = [(s, s) for s in (PENDING, APPROVED, REJECTED, EXPIRED, DRIFTED, WITHDRAWN, REVIEW, REVIEWED)]
    OPEN = (PENDING, REVIEW)
    NOT_RUN = (REJECTED, EXPIRED, WITHDRAWN, DRIFTED)  # ended, and its job never ran
    REVIEW_ACKS = 2

    operation = models.CharField(max_length=100, db_index=True)
    params = EncryptedJSONField(help_text="The exact validated params that will run.")
    params_redacted = models.JSONField(default=dict)
    target = models.CharField(max_length=300, blank=True)
    scope = models.CharField(max_length=200, blank=True)
    reason = models.TextField(blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_requests")
    # What the requester called through and its scopes (Actor.credential, Actor.scopes): the approved job runs
    # through it, with no more, and not at all once it is revoked.
    credential = models.CharField(max_length=100, blank=True)
    scopes = models.JSONField(default=list, blank=True)
    channel = models.CharField(max_length=10)
    quorum = models.PositiveSmallIntegerField(default=1)
    group_quorum = models.JSONField(default=dict, blank=True, help_text="Copied from the policy when requested.")
    wait_minutes = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=STATUSES, default=PENDING, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    plan = models.JSONField(default=dict, help_text="What the call will do, resolved when requested (secret values masked).")
    plan_hash = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the plan's canonical JSON: votes are on it.")
    # Set by the one atomic claim when the job starts: a request executes at most once.
    executed_at = models.DateTimeField(null=True, blank=True)
    drifted_plan = models.JSONField(null=True, blank=True, help_text="The plan when the approved job started, if it differed.")
    break_glass = models.BooleanField(default=False)
    # The jobs that execute it (core's jobs know only its number): one as a rule; a second is refused at its start.
    jobs = models.ManyToManyField("core.Job", through="ApprovalRun", related_name="+")

    objects = ApprovalRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("approve_requests", "Approve or reject other people's requests"),
            ("break_glass", "Run one risky operation without approval, with a reason (loudly audited, reviewed after)"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.operation} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("approvals:detail", args=[self.pk])

    @property
    def approvals_count(self) -> int:
        return sum(1 for v in self.votes.all() if v.decision == ApprovalVote.APPROVE)

    @property
    def acknowledgements_count(self) -> int:
        return sum(1 for v in self.votes.all() if v.decision == ApprovalVote.ACKNOWLEDGE)

    @property
    def job(self):
        """The newest job of this request (a list prefetches them, newest first)."""
        if "jobs" in getattr(self, "_prefetched_objects_cache", {}):
            return next(iter(self.jobs.all()), None)
        return self.jobs.order_by("-created_at").first()


class ApprovalRun(models.Model):
    """A job queued to execute a request (approved, or a break-glass run under review): recorded as it is queued."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="runs")
    job = models.OneToOneField("core.Job", on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return f"#{self.request_id} run by job {self.job_id}"


class ApprovalVote(models.Model):
    APPROVE, REJECT, ACKNOWLEDGE = "approve", "reject", "acknowledge"

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="votes")
    voter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=12, choices=[(d, d) for d in (APPROVE, REJECT, ACKNOWLEDGE)])
    plan_hash = models.CharField(max_length=64, blank=True, help_text="The plan hash the voter saw and voted on.")
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["request", "voter"], name="one_vote_per_voter")]

    def __str__(self) -> str:
        return f"{self.voter} {self.decision}s #{self.request_id}"
