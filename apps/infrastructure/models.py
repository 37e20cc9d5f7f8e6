"""What the console stores about infrastructure. What actually runs is read from
the engine (containers carry `opsconsole.*` labels); these rows hold intent
and history: environments, service specs, revisions, deployments, runbooks."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from apps.core.fields import EncryptedJSONField, EncryptedTextField
from apps.core.models import LogLine

from .specs import STRATEGIES, ServiceSpec, StrategyOptions

slug = RegexValidator(r"^[a-z0-9][a-z0-9-]{0,39}$", "lower-case letters, digits and dashes (max 40)")
# Risky operations whose approval policy follows an environment's quorum.
ENVIRONMENT_SCOPED_OPERATIONS = ("infrastructure.deploy", "infrastructure.stop", "infrastructure.prune")


class Environment(models.Model):
    """One Docker Engine API endpoint (dockerd, or podman's compatible service)."""

    name = models.CharField(max_length=40, unique=True, validators=[slug])
    engine_url = models.CharField(max_length=300, help_text="unix:///run/docker.sock or tcp://host:2376")
    tls_ca_cert = models.TextField(blank=True, help_text="PEM of the CA that signed the engine's certificate.")
    tls_client_cert = models.TextField(blank=True, help_text="PEM client certificate.")
    tls_client_key = EncryptedTextField(blank=True, help_text="PEM client key (stored encrypted, never shown).")
    timeout_seconds = models.PositiveIntegerField(default=30)
    protected = models.BooleanField(default=False, help_text="Deploys, stops and prunes need approval.")
    quorum = models.PositiveSmallIntegerField(default=1, help_text="Approvals a protected environment needs.")
    publish_address = models.CharField(max_length=100, default="127.0.0.1", help_text="Address service routers publish their ports on.")
    host_address = models.CharField(
        max_length=100, default="127.0.0.1", help_text="Address of the engine's host as the console reaches it (health probes)."
    )
    router_image = models.CharField(max_length=300, default="busybox:1.36", help_text="Image with busybox sh and nc for routers.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("manage_environments", "Manage environments and their engine credentials"),
            ("manage_runbooks", "Define runbooks"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        self.sync_approval_policies()

    @property
    def approval_scope(self) -> str:
        return f"environment:{self.name}"

    def sync_approval_policies(self) -> None:
        """A protected environment's quorum is the approval policy of its risky operations."""
        from apps.approvals.models import ApprovalPolicy

        policies = ApprovalPolicy.objects.filter(operation__in=ENVIRONMENT_SCOPED_OPERATIONS, scope=self.approval_scope)
        if not self.protected:
            policies.delete()
            return
        for operation in ENVIRONMENT_SCOPED_OPERATIONS:
            ApprovalPolicy.objects.update_or_create(
                operation=operation, scope=self.approval_scope, defaults={"quorum": max(1, self.quorum), "requires_approval": True}
            )


class Service(models.Model):
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="services")
    name = models.CharField(max_length=40, validators=[slug])
    spec = models.JSONField(help_text="ServiceSpec: what the next deploy applies.")
    secret_env = EncryptedJSONField(blank=True, null=True, help_text="Secret variables, encrypted; never shown again.")
    strategy = models.CharField(max_length=20, choices=[(s, s) for s in STRATEGIES], default="rolling")
    strategy_options = models.JSONField(default=dict, blank=True)
    current_revision = models.ForeignKey("Revision", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["environment__name", "name"]
        unique_together = [("environment", "name")]

    def __str__(self) -> str:
        return f"{self.environment.name}/{self.name}"

    def get_absolute_url(self) -> str:
        return reverse("infrastructure:service", args=[self.environment.name, self.name])

    @property
    def parsed_spec(self) -> ServiceSpec:
        return ServiceSpec.model_validate(self.spec)


class Revision(models.Model):
    """The full spec one deploy applied; any revision can be deployed again."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    spec = models.JSONField()
    secret_env = EncryptedJSONField(blank=True, null=True)
    # The engine's content id of spec.image, pinned by the approved plan (or at the revision's first start): replicas
    # run these bytes, so a tag moved since (a rebuild, a retag) never reaches a restart, a rollback or a later step.
    image_id = models.CharField(max_length=100, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-number"]
        unique_together = [("service", "number")]

    def __str__(self) -> str:
        return f"{self.service} r{self.number}"

    @property
    def parsed_spec(self) -> ServiceSpec:
        return ServiceSpec.model_validate(self.spec)


class Deployment(models.Model):
    PENDING_APPROVAL, QUEUED, RUNNING, PAUSED = "pending approval", "queued", "running", "paused"
    SUCCEEDED, FAILED, ROLLED_BACK, ABORTED = "succeeded", "failed", "rolled back", "aborted"
    STATUSES = [(s, s) for s in (PENDING_APPROVAL, QUEUED, RUNNING, PAUSED, SUCCEEDED, FAILED, ROLLED_BACK, ABORTED)]
    ACTIVE = (QUEUED, RUNNING, PAUSED)
    FINISHED = (SUCCEEDED, FAILED, ROLLED_BACK, ABORTED)

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="deployments")
    kind = models.CharField(max_length=10, default="deploy", help_text="deploy, rollback or restart")
    revision = models.ForeignKey(Revision, on_delete=models.PROTECT, related_name="deployments")
    previous_revision = models.ForeignKey(Revision, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    previous_replicas = models.PositiveSmallIntegerField(default=0)
    strategy = models.CharField(max_length=20, choices=[(s, s) for s in STRATEGIES])
    options = models.JSONField(default=dict)
    status = models.CharField(max_length=20, choices=STATUSES, default=QUEUED, db_index=True)
    reason = models.TextField(blank=True)
    step = models.PositiveSmallIntegerField(default=0, help_text="canary: index of the next step to run")
    step_label = models.CharField(max_length=200, blank=True)
    analysis = models.JSONField(default=list, blank=True, help_text="canary: each analysis step's verdict and measured points per metric")
    colour = models.CharField(max_length=10, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    approval = models.ForeignKey("approvals.ApprovalRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    approved_by = models.CharField(max_length=300, blank=True)
    job = models.ForeignKey("core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    abort_requested = models.BooleanField(default=False)
    promote_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"deployment #{self.pk} of {self.service} r{self.revision.number} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("infrastructure:deployment", args=[self.pk])

    @property
    def parsed_options(self) -> StrategyOptions:
        return StrategyOptions.model_validate(self.options or {})

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def abortable(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def promotable(self) -> bool:
        return self.status == self.PAUSED or (self.status == self.RUNNING and self.strategy == "canary")

    @property
    def status_class(self) -> str:
        return self.status.replace(" ", "-")


class DeploymentLogLine(LogLine):
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="log_lines")


class Runbook(models.Model):
    """An allow-listed command: an argv template with typed parameters, run without a shell."""

    name = models.CharField(max_length=40, unique=True, validators=[slug])
    description = models.TextField(blank=True)
    argv = models.JSONField(help_text='Template, e.g. ["kubectl", "rollout", "status", "deployment/{name}"].')
    parameters = models.JSONField(default=list, blank=True, help_text="List of parameter definitions.")
    working_dir = models.CharField(max_length=500)
    env = EncryptedJSONField(blank=True, null=True, help_text="Environment variables (encrypted; only names are shown).")
    timeout_seconds = models.PositiveIntegerField(default=60)
    output_cap_bytes = models.PositiveIntegerField(default=256 * 1024)
    cpu_seconds = models.PositiveIntegerField(default=60)
    memory_mb = models.PositiveIntegerField(default=512)
    max_processes = models.PositiveIntegerField(default=64)
    max_file_mb = models.PositiveIntegerField(default=64)
    risky = models.BooleanField(default=False, help_text="Runs need approval.")
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("infrastructure:runbook", args=[self.name])
