from __future__ import annotations

import os

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.urls import reverse

from apps.core.fields import EncryptedTextField
from apps.core.outbound import Guard, OutboundRefused


def outbound_guard() -> Guard:
    """Sources usually live inside (loopback, private networks): MONITORING_OUTBOUND_ALLOW lists what they may be."""
    return Guard(settings.MONITORING_OUTBOUND_ALLOW, label="Prometheus/Alertmanager sources")


class PrometheusSource(models.Model):
    """A Prometheus server the console queries, with its optional Alertmanager."""

    AUTH_NONE, AUTH_BEARER, AUTH_BASIC = "none", "bearer", "basic"
    AUTH_TYPES = [(AUTH_NONE, "none"), (AUTH_BEARER, "bearer token"), (AUTH_BASIC, "basic auth")]

    name = models.SlugField(
        max_length=60, unique=True, help_text='Operations name the source by this; "default" is used when none is given.'
    )
    base_url = models.URLField(max_length=300, help_text="e.g. http://prometheus:9090 (a path prefix is kept).")
    alertmanager_url = models.URLField(max_length=300, blank=True, help_text="Optional; alerts from it and silences need it.")
    auth_type = models.CharField(max_length=10, choices=AUTH_TYPES, default=AUTH_NONE)
    username = models.CharField(max_length=150, blank=True, help_text="For basic auth.")
    secret = EncryptedTextField(blank=True, help_text="The bearer token or basic-auth password; stored encrypted, never shown again.")
    secret_env = models.CharField(
        max_length=100, blank=True, help_text="Or: the name of an environment variable holding the token or password."
    )
    timeout_seconds = models.FloatField(
        default=10, validators=[MinValueValidator(0.5)], help_text="Per request; also sent to Prometheus as the query timeout."
    )
    verify_tls = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        for field in ("base_url", "alertmanager_url"):
            url = getattr(self, field)
            if url:
                try:
                    outbound_guard().check(url)
                except OutboundRefused as exc:
                    raise ValidationError({field: exc.message}) from None
        if self.secret_env and not self.secret_env.replace("_", "").isalnum():
            raise ValidationError({"secret_env": "An environment variable name: letters, digits and _."})
        if self.auth_type == self.AUTH_BASIC and not self.username:
            raise ValidationError({"username": "Basic auth needs a username."})

    def credential(self) -> str:
        """The token or password: from the environment when `secret_env` names a variable."""
        if self.secret_env:
            return os.environ.get(self.secret_env, "")
        return self.secret

    def secrets(self) -> tuple[str, ...]:
        """What the source's error texts must never show (see apps.core.scrub)."""
        credential = self.credential()
        return (credential, f"{self.username}:{credential}") if credential else ()

    @property
    def breaker_names(self) -> tuple[str, str]:
        return f"prometheus:{self.name}", f"alertmanager:{self.name}"


class Dashboard(models.Model):
    RANGES = ("5m", "15m", "1h", "6h", "24h", "7d")
    MAX_PANELS = 24  # the editor refuses more; a render queries them all at once (services/dashboards.py)

    slug = models.SlugField(max_length=60, unique=True)
    title = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    source = models.ForeignKey(
        PrometheusSource, null=True, blank=True, on_delete=models.SET_NULL, help_text='Empty: the source named "default".'
    )
    refresh_seconds = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1)], help_text="Live mode refreshes every viewer at once on this interval."
    )
    default_range = models.CharField(max_length=10, default="1h", choices=[(r, r) for r in RANGES])
    builtin = models.BooleanField(default=False, editable=False, help_text="Shipped with the console.")
    # Part of the live cache key: an edited dashboard is evaluated afresh.
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("monitoring:dashboard", args=[self.slug])


class Panel(models.Model):
    LINE, AREA, STAT, TABLE = "line", "area", "stat", "table"
    CHARTS = [(LINE, "line"), (AREA, "area"), (STAT, "stat"), (TABLE, "table")]
    UNITS = [
        ("", "none"),
        ("percent", "percent (0-100)"),
        ("ratio", "ratio (0-1 as %)"),
        ("seconds", "seconds"),
        ("bytes", "bytes"),
        ("per_second", "per second"),
    ]

    dashboard = models.ForeignKey(Dashboard, on_delete=models.CASCADE, related_name="panels")
    position = models.PositiveSmallIntegerField(default=0)
    title = models.CharField(max_length=120)
    query = models.TextField(help_text="PromQL.")
    chart = models.CharField(max_length=10, choices=CHARTS, default=LINE)
    unit = models.CharField(max_length=12, choices=UNITS, blank=True)
    warning = models.FloatField(null=True, blank=True, help_text="Values at or above this show as warning.")
    critical = models.FloatField(null=True, blank=True, help_text="Values at or above this show as critical.")
    legend = models.CharField(max_length=120, blank=True, help_text="Label names to name series by, e.g. job,instance (default: all).")

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.title

    @property
    def instant(self) -> bool:
        """Stat and table panels show one value per series: an instant query."""
        return self.chart in (self.STAT, self.TABLE)
