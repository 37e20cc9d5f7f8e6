from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from .roles import ROLE_DESCRIPTIONS, ROLES

ROLE_CHOICES = [(r, f"{r} — {ROLE_DESCRIPTIONS[r]}") for r in ROLES]


class LoginForm(AuthenticationForm):
    """Django's login form. While the sender is rate-limited (`limited`), it refuses before
    authenticate() runs: the password is not checked and no login-failed signal is sent."""

    limited = False

    def clean(self):
        if self.limited:
            raise ValidationError("Too many login attempts. Wait a minute and try again.", code="rate_limited")
        return super().clean()


class UserForm(forms.Form):
    """The fields of accounts.save_user; the operation validates (name clash, password rules, own admin role)."""

    username = forms.RegexField(regex=r"^[\w.@+-]{1,150}$", max_length=150)
    email = forms.EmailField(required=False)
    roles = forms.MultipleChoiceField(choices=ROLE_CHOICES, widget=forms.CheckboxSelectMultiple, required=False)
    teams = forms.CharField(
        required=False, help_text="Other groups, comma-separated (e.g. sre, security): approval policies may require approvers from them."
    )
    password = forms.CharField(
        widget=forms.PasswordInput, required=False, strip=False, help_text="Leave empty to keep the current password."
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active")

    def clean_teams(self) -> list[str]:
        return [t.strip() for t in self.cleaned_data["teams"].split(",") if t.strip()]


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “claude-desktop on laptop”.")
    scopes = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, help_text="A subset of your roles.")
    expires_in_days = forms.IntegerField(min_value=1, max_value=365, initial=30)

    def __init__(self, *args, roles=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scopes"].choices = [(r, r) for r in ROLES if r in roles]
        self.fields["scopes"].initial = [r for r in roles if r not in ("admin",)]
