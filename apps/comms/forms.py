"""Setup forms. Secrets are write-only: the field is never filled in, and left
empty it keeps the stored value."""

from __future__ import annotations

import json

from django import forms

from .models import AllowedNetwork, Connector, DeliveryPreference, EscalationPolicy, InhibitRule, RoutingRule, Target


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
        help_text="Write-only: leave empty to keep the stored value (or to use the environment variable).",
    )  # fmt: skip
    clear_secret = forms.BooleanField(required=False, help_text="Forget the stored secret (the environment variable applies).")
    # Webhook URLs carry their key: write-only like the secret.
    url = forms.CharField(
        required=False, max_length=500, widget=forms.PasswordInput(render_value=False),
        help_text="Write-only: leave empty to keep the stored URL. Slack/Twilio API base URL or the webhook URL.",
    )  # fmt: skip
    clear_url = forms.BooleanField(required=False, help_text="Forget the stored URL (the default or environment variable applies).")

    class Meta:
        model = Connector
        fields = ["name", "kind", "url", "options", "secret", "enabled"]

    def clean_url(self):
        url = self.cleaned_data["url"].strip()
        if url and not url.startswith(("http://", "https://")):
            raise forms.ValidationError("An http(s) URL.")
        return url

    def save(self, commit=True):
        connector = super().save(commit=False)
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


class RoutingRuleForm(forms.ModelForm):
    severities = CommaListField(required=False, help_text="e.g. critical, warning; empty = any.")
    priorities = CommaListField(required=False, help_text="e.g. high, urgent; empty = any.")
    services = CommaListField(required=False, help_text="Empty = any service.")
    targets = CommaListField(help_text="Target names, in order.")
    group_by = CommaListField(required=False, help_text="e.g. service, alertname.")

    class Meta:
        model = RoutingRule
        fields = [
            "name", "position", "enabled", "is_default", "severities", "priorities", "services", "labels", "targets",
            "escalation_policy", "group_by", "group_wait_seconds", "continue_matching",
        ]  # fmt: skip


class InhibitRuleForm(forms.ModelForm):
    equal = CommaListField(required=False, help_text="Labels both alerts must share, e.g. service.")

    class Meta:
        model = InhibitRule
        fields = ["name", "enabled", "source_match", "target_match", "equal"]


class EscalationPolicyForm(forms.ModelForm):
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
