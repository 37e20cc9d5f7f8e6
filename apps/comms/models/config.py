"""What an admin configures: connectors (with encrypted credentials), named
targets, routing and inhibition rules, escalation policies, the SSRF
allow-list, and each user's own delivery preference."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from apps.core.fields import EncryptedTextField
from apps.core.outbound import display_url

SEVERITIES = ["info", "warning", "critical"]
PRIORITIES = ["low", "normal", "high", "urgent"]


class Connector(models.Model):
    """One configured channel: a Slack workspace, a Teams webhook, an SMTP server,
    an SMS account or a generic webhook. Its secret is stored encrypted and never
    shown again; when it is empty the matching environment variable is used."""

    SLACK, TEAMS, EMAIL, SMS, WEBHOOK = "slack", "teams", "email", "sms", "webhook"
    KINDS = [(SLACK, "Slack"), (TEAMS, "Microsoft Teams"), (EMAIL, "Email (SMTP)"), (SMS, "SMS (Twilio API)"), (WEBHOOK, "Webhook")]
    # kind -> what `secret` holds, and its environment fallback
    SECRET_OF = {
        SLACK: ("Bot token (xoxb-…)", "COMMS_SLACK_TOKEN"),
        TEAMS: ("Incoming webhook URL (it embeds a key)", "COMMS_TEAMS_WEBHOOK_URL"),
        EMAIL: ("SMTP password", "EMAIL_HOST_PASSWORD"),
        SMS: ("Auth token", "COMMS_TWILIO_AUTH_TOKEN"),
        WEBHOOK: ("HMAC signing secret", "COMMS_WEBHOOK_SECRET"),
    }
    DEFAULT_URL = {SLACK: "COMMS_SLACK_BASE_URL", SMS: "COMMS_TWILIO_BASE_URL"}

    name = models.SlugField(max_length=60, unique=True)
    kind = models.CharField(max_length=10, choices=KINDS)
    # Encrypted and write-only like the secret: webhook URLs (Teams, Slack, generic ones with a
    # token in the query) carry their key. Pages show `url_display` (scheme://host/…).
    url = EncryptedTextField(
        blank=True, help_text="Slack API base URL, Twilio API base URL or the webhook URL; empty = the default. Stored encrypted."
    )
    options = models.JSONField(
        default=dict,
        blank=True,
        help_text='Non-secret settings: {"account_sid", "from"} for SMS; {"host", "port", "username", "use_tls", "from"} for email.',
    )
    secret = EncryptedTextField(blank=True)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def credential(self) -> str:
        return self.secret or getattr(settings, self.SECRET_OF[self.kind][1], "")

    def endpoint(self) -> str:
        if self.url:
            return self.url
        if self.kind == self.TEAMS:
            return self.credential()
        return getattr(settings, self.DEFAULT_URL.get(self.kind, ""), "")

    @property
    def has_secret(self) -> bool:
        return bool(self.credential())

    @property
    def url_display(self) -> str:
        """The endpoint as pages show it: scheme, host and port only."""
        return display_url(self.endpoint())

    def secrets(self) -> tuple[str, ...]:
        """What error texts of this connector must never show (see apps.core.scrub)."""
        credential = self.credential()
        found = [credential]
        if self.kind in (self.TEAMS, self.WEBHOOK):
            found.append(self.endpoint())  # the webhook URL carries its key
        if self.kind == self.SMS and credential:
            sid = self.options.get("account_sid") or settings.COMMS_TWILIO_ACCOUNT_SID
            found.append(f"{sid}:{credential}")  # what the Basic header encodes
        return tuple(s for s in found if s)


class Target(models.Model):
    """A named destination: a connector plus a recipient (#channel, address, number)."""

    name = models.SlugField(max_length=60, unique=True, help_text="Rules and escalation levels name targets.")
    connector = models.ForeignKey(Connector, on_delete=models.PROTECT, related_name="targets")
    recipient = models.CharField(
        max_length=200, blank=True, help_text="Slack channel (#ops or C0123), email address or phone number; empty for Teams/webhooks."
    )
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} → {self.connector.name}{' ' + self.recipient if self.recipient else ''}"


def validate_target_names(names) -> None:
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValidationError("A list of target names.")
    missing = sorted(set(names) - set(Target.objects.filter(name__in=names).values_list("name", flat=True)))
    if missing:
        raise ValidationError(f"No target named {', '.join(missing)}.")


def validate_label_map(value) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValidationError('A JSON object of label names to values, e.g. {"team": "payments"}.')


class RoutingRule(models.Model):
    """Alertmanager-style route: the first matching rule (by position) decides the
    targets, unless it says continue. Empty conditions match everything."""

    name = models.CharField(max_length=100, unique=True)
    position = models.PositiveIntegerField(default=100, help_text="Rules are tried in ascending order.")
    enabled = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False, help_text="Used when no other rule matches.")
    severities = models.JSONField(default=list, blank=True, help_text=f"Any of {', '.join(SEVERITIES)}; empty = any.")
    priorities = models.JSONField(default=list, blank=True, help_text=f"Any of {', '.join(PRIORITIES)}; empty = any.")
    services = models.JSONField(default=list, blank=True, help_text="Service/app names; empty = any.")
    labels = models.JSONField(default=dict, blank=True, validators=[validate_label_map], help_text="Every label must equal.")
    targets = models.JSONField(default=list, validators=[validate_target_names], help_text="Target names, in order.")
    escalation_policy = models.ForeignKey("EscalationPolicy", null=True, blank=True, on_delete=models.SET_NULL)
    group_by = models.JSONField(default=list, blank=True, help_text="Alerts equal on these labels share one incident and notification.")
    group_wait_seconds = models.PositiveIntegerField(default=0, help_text="Wait this long to collect a new group's alerts.")
    continue_matching = models.BooleanField(default=False, help_text="Also try the rules after this one.")

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class InhibitRule(models.Model):
    """While an alert matching `source_match` fires, alerts matching `target_match`
    that agree on every `equal` label are muted (e.g. critical mutes warning)."""

    name = models.CharField(max_length=100, unique=True)
    enabled = models.BooleanField(default=True)
    source_match = models.JSONField(default=dict, validators=[validate_label_map], help_text='e.g. {"severity": "critical"}')
    target_match = models.JSONField(default=dict, validators=[validate_label_map], help_text='e.g. {"severity": "warning"}')
    equal = models.JSONField(default=list, blank=True, help_text='Labels that must be equal, e.g. ["service"].')

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def validate_levels(levels) -> None:
    if not isinstance(levels, list) or not levels:
        raise ValidationError("At least one level.")
    for i, level in enumerate(levels, 1):
        if not isinstance(level, dict) or not isinstance(level.get("after_minutes"), int) or level["after_minutes"] < 0:
            raise ValidationError(f"Level {i}: after_minutes must be a whole number ≥ 0.")
        validate_target_names(level.get("targets"))


class EscalationPolicy(models.Model):
    """Levels of targets: level 1 is paged when an incident opens; each next level
    `after_minutes` after the previous one while nobody acknowledges."""

    name = models.SlugField(max_length=60, unique=True)
    description = models.CharField(max_length=200, blank=True)
    levels = models.JSONField(validators=[validate_levels], help_text='[{"after_minutes": 0, "targets": ["ops-slack"]}, …]')

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "escalation policies"

    def __str__(self) -> str:
        return self.name


class AllowedNetwork(models.Model):
    """An admin's exception to the outbound guard: comms targets in this network may be called."""

    cidr = models.CharField(max_length=50, unique=True, help_text="e.g. 10.1.2.0/24 or 127.0.0.1/32")
    note = models.CharField(max_length=200, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["cidr"]

    def __str__(self) -> str:
        return self.cidr

    @classmethod
    def cidrs(cls) -> list[str]:
        """The comms allow-list: COMMS_SSRF_ALLOW and the admins' rows."""
        return list(settings.COMMS_SSRF_ALLOW) + list(cls.objects.values_list("cidr", flat=True))

    def clean(self):
        import ipaddress

        try:
            self.cidr = str(ipaddress.ip_network(self.cidr.strip(), strict=False))
        except ValueError:
            raise ValidationError({"cidr": "Not a network address (e.g. 10.1.2.0/24)."}) from None


class DeliveryPreference(models.Model):
    """Where a user also wants their console notifications (approval decisions, finished jobs)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="comms_preference")
    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="+")
    recipient = models.CharField(max_length=200, help_text="Your email address, Slack member/channel id or phone number.")
    enabled = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.user} via {self.connector.name}"
