from __future__ import annotations

import re

from django import forms
from django.db import models

from .models import Dashboard, Panel, PrometheusSource


def _field(model_field, **kwargs):
    if isinstance(model_field, models.URLField):
        kwargs["assume_scheme"] = "https"  # a URL typed without a scheme; Django 6's default
    return model_field.formfield(**kwargs)


class SourceForm(forms.ModelForm):
    secret = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="The bearer token or basic-auth password; stored encrypted. Leave empty to keep the stored one.",
    )
    clear_secret = forms.BooleanField(required=False, label="Remove the stored token or password")

    class Meta:
        model = PrometheusSource
        fields = ["name", "base_url", "alertmanager_url", "auth_type", "username", "secret", "secret_env", "timeout_seconds", "verify_tls"]
        formfield_callback = _field

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._stored_secret = self.instance.secret if self.instance.pk else ""
        self.initial["secret"] = ""  # never rendered back

    def clean(self):
        data = super().clean()
        if not data.get("secret") and not data.get("clear_secret"):
            self.instance.secret = data["secret"] = self._stored_secret
        return data

    @property
    def changed_fields(self) -> list[str]:
        return [name for name in self.changed_data if name not in ("secret", "clear_secret")] + (
            ["secret"] if self.cleaned_data.get("secret") != self._stored_secret else []
        )


class DashboardForm(forms.ModelForm):
    class Meta:
        model = Dashboard
        fields = ["title", "slug", "description", "source", "refresh_seconds", "default_range"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}


PanelFormSet = forms.inlineformset_factory(
    Dashboard,
    Panel,
    fields=["position", "title", "query", "chart", "unit", "warning", "critical", "legend"],
    widgets={"query": forms.Textarea(attrs={"rows": 2, "class": "mono"})},
    extra=2,
    can_delete=True,
    max_num=Dashboard.MAX_PANELS,
    validate_max=True,
)


class SilenceForm(forms.Form):
    """A silence from label matchers, one per line: name=value, name!=value, name=~regex, name!~regex."""

    matchers = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}), help_text="One per line: alertname=DiskFull")
    duration_minutes = forms.IntegerField(min_value=1, max_value=60 * 24 * 30, initial=120)
    comment = forms.CharField(max_length=1000, widget=forms.Textarea(attrs={"rows": 2}))

    LINE = re.compile(r"^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)(.*)$")
    OPERATORS = {"=": (False, True), "!=": (False, False), "=~": (True, True), "!~": (True, False)}

    def clean_matchers(self) -> list[dict]:
        parsed = []
        for line in self.cleaned_data["matchers"].splitlines():
            if not line.strip():
                continue
            match = self.LINE.match(line)
            if not match:
                raise forms.ValidationError(f"{line!r} is not name=value (or !=, =~, !~).")
            name, op, value = match.groups()
            is_regex, is_equal = self.OPERATORS[op]
            parsed.append({"name": name, "value": value, "is_regex": is_regex, "is_equal": is_equal})
        if not parsed:
            raise forms.ValidationError("Give at least one matcher.")
        return parsed
