"""Setup forms. Secrets are write-only: the field is never filled in, and left
empty it keeps the stored value."""

from __future__ import annotations

import json

from django import forms

from apps.core.forms import KeyValueField, RowsField

from .models import AllowedNetwork, Connector, DeliveryPreference, EscalationPolicy, InhibitRule, RoutingRule, Target
from .models.config import PRIORITIES, SEVERITIES

EMAIL, SMS = Connector.EMAIL, Connector.SMS
# Typed form field -> (its key in Connector.options, the kinds that read it). Other stored keys are kept.
OPTIONS = {
    "smtp_host": ("host", (EMAIL,)),
    "smtp_port": ("port", (EMAIL,)),
    "smtp_username": ("username", (EMAIL,)),
    "smtp_tls": ("use_tls", (EMAIL,)),
    "sender": ("from", (EMAIL, SMS)),
    "account_sid": ("account_sid", (SMS,)),
}
TLS = {"": None, "yes": True, "no": False}


class CommaListField(forms.CharField):
    """A list of names edited as "a, b, c"."""

    def prepare_value(self, value):
        if isinstance(value, str) and value.startswith("["):
            value = json.loads(value)
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        return [item.strip() for item in (super().to_python(value) or "").split(",") if item.strip()]


class ConnectorForm(forms.ModelForm):
    secret = forms.CharField(
        required=False, strip=False, widget=forms.PasswordInput(render_value=False),
        help_text="Write-only: leave empty to keep the stored value (or to use the environment variable). "
        + "; ".join(f"{label}: {Connector.SECRET_OF[kind][0]}" for kind, label in Connector.KINDS) + ".",
    )  # fmt: skip
    clear_secret = forms.BooleanField(required=False, help_text="Forget the stored secret (the environment variable applies).")
    # Webhook URLs carry their key: write-only like the secret.
    url = forms.CharField(
        required=False, max_length=500, label="URL", widget=forms.PasswordInput(render_value=False),
        help_text="Write-only: leave empty to keep the stored URL. Slack/Twilio API base URL or the webhook URL.",
    )  # fmt: skip
    clear_url = forms.BooleanField(
        required=False, label="Clear URL", help_text="Forget the stored URL (the default or environment variable applies)."
    )
    smtp_host = forms.CharField(required=False, max_length=200, label="SMTP host", help_text="Email only; empty = EMAIL_HOST.")
    smtp_port = forms.IntegerField(
        required=False, min_value=1, max_value=65535, label="SMTP port", help_text="Email only; empty = EMAIL_PORT."
    )
    smtp_username = forms.CharField(required=False, max_length=200, label="SMTP user name", help_text="Email only.")
    smtp_tls = forms.ChoiceField(
        required=False, label="SMTP STARTTLS", choices=[("", "server default (EMAIL_USE_TLS)"), ("yes", "yes"), ("no", "no")],
        help_text="Email only.",
    )  # fmt: skip
    sender = forms.CharField(required=False, max_length=200, label="From", help_text="Email: the sender address; SMS: the sending number.")
    account_sid = forms.CharField(required=False, max_length=100, label="Account SID", help_text="SMS only (not secret).")

    field_order = ["name", "kind", "enabled", "url", "clear_url", "secret", "clear_secret", *OPTIONS]

    class Meta:
        model = Connector
        fields = ["name", "kind", "url", "secret", "enabled"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = self.instance.options or {}
        for field, (key, _) in OPTIONS.items():
            value = stored.get(key)
            self.initial[field] = {True: "yes", False: "no"}.get(value, "") if field == "smtp_tls" else value

    def clean_url(self):
        url = self.cleaned_data["url"].strip()
        if url and not url.startswith(("http://", "https://")):
            raise forms.ValidationError("An http(s) URL.")
        return url

    def options(self) -> dict:
        """The stored options with the typed ones of this kind set (and the other kinds' dropped)."""
        managed = {key for key, _ in OPTIONS.values()}
        found = {k: v for k, v in (self.instance.options or {}).items() if k not in managed}
        kind = self.cleaned_data.get("kind")
        for field, (key, kinds) in OPTIONS.items():
            value = TLS[self.cleaned_data[field]] if field == "smtp_tls" else self.cleaned_data.get(field)
            if kind in kinds and value not in (None, ""):
                found[key] = value
        return found

    def save(self, commit=True):
        connector = super().save(commit=False)
        connector.options = self.options()
        stored = Connector.objects.get(pk=self.instance.pk) if self.instance.pk else None
        for field in ("secret", "url"):
            if self.cleaned_data.get(f"clear_{field}"):
                setattr(connector, field, "")
            elif not self.cleaned_data.get(field) and stored:
                setattr(connector, field, getattr(stored, field))
        if commit:
            connector.save()
        return connector


class TargetForm(forms.ModelForm):
    class Meta:
        model = Target
        fields = ["name", "connector", "recipient", "description"]


class LabelsField(KeyValueField):
    """Label name -> value rows; none is an empty mapping (the model's default)."""

    def to_python(self, value):
        return super().to_python(value) or {}


class RoutingRuleForm(forms.ModelForm):
    severities = forms.MultipleChoiceField(
        required=False, choices=[(s, s) for s in SEVERITIES], widget=forms.CheckboxSelectMultiple, help_text="None ticked = any."
    )
    priorities = forms.MultipleChoiceField(
        required=False, choices=[(p, p) for p in PRIORITIES], widget=forms.CheckboxSelectMultiple, help_text="None ticked = any."
    )
    services = CommaListField(required=False, help_text="Empty = any service.")
    labels = LabelsField(required=False, help_text="Every label must equal; no rows = any labels.")
    targets = CommaListField(help_text="Target names, in order.")
    group_by = CommaListField(required=False, help_text="e.g. service, alertname.")

    class Meta:
        model = RoutingRule
        fields = [
            "name", "position", "enabled", "is_default", "severities", "priorities", "services", "labels", "targets",
            "escalation_policy", "group_by", "group_wait_seconds", "continue_matching",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names = list(Target.objects.values_list("name", flat=True)[:30])
        self.fields["targets"].help_text = f"Target names, in order. Defined: {', '.join(names)}." if names else "Add targets first."


class InhibitRuleForm(forms.ModelForm):
    source_match = LabelsField(label="While firing", help_text="Labels of the alert that mutes, e.g. alertname = NodeDown.")
    target_match = LabelsField(label="Mute", help_text="Labels of the alerts it mutes.")
    equal = CommaListField(required=False, help_text="Labels both alerts must share, e.g. service.")

    class Meta:
        model = InhibitRule
        fields = ["name", "enabled", "source_match", "target_match", "equal"]


class LevelsField(RowsField):
    """Escalation levels as rows: minutes after the previous level, and its targets ("a, b")."""

    def __init__(self, **kwargs):
        columns = [("after_minutes", "after minutes", "number"), ("targets", "targets, in order", "text")]
        super().__init__(columns, **kwargs)

    def to_python(self, value):
        levels = []
        for i, row in enumerate(super().to_python(value), 1):
            minutes = str(row["after_minutes"]).strip()
            if not minutes.isdigit():
                raise forms.ValidationError(f"Level {i}: after minutes must be a whole number ≥ 0.")
            levels.append({"after_minutes": int(minutes), "targets": CommaListField().to_python(row["targets"])})
        return levels

    def prepare_value(self, value):
        if isinstance(value, str):  # an instance's JSON as the model form gives it
            value = json.loads(value)
        return [{**level, "targets": ", ".join(level.get("targets") or [])} for level in value or []]


class EscalationPolicyForm(forms.ModelForm):
    levels = LevelsField(
        help_text="Level 1 is paged when an incident opens; each next level this many minutes after the previous one, "
        "while nobody acknowledges. Targets by name, in order."
    )

    class Meta:
        model = EscalationPolicy
        fields = ["name", "description", "levels"]


class AllowedNetworkForm(forms.ModelForm):
    class Meta:
        model = AllowedNetwork
        fields = ["cidr", "note"]


class PreferenceForm(forms.ModelForm):
    class Meta:
        model = DeliveryPreference
        fields = ["connector", "recipient", "enabled"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["connector"].queryset = Connector.objects.filter(enabled=True, kind__in=["email", "slack", "sms"])
