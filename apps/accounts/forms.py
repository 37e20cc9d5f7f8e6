from datetime import timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.utils import timezone

from .roles import ROLE_DESCRIPTIONS, ROLES

User = get_user_model()
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
    username = forms.RegexField(regex=r"^[\w.@+-]{1,150}$", max_length=150)
    email = forms.EmailField(required=False)
    roles = forms.MultipleChoiceField(choices=ROLE_CHOICES, widget=forms.CheckboxSelectMultiple, required=False)
    password = forms.CharField(
        widget=forms.PasswordInput, required=False, strip=False, help_text="Leave empty to keep the current password."
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active")

    def __init__(self, *args, instance=None, **kwargs):
        self.instance = instance
        super().__init__(*args, **kwargs)
        if instance is None:
            self.fields["password"].required = True
            self.fields["password"].help_text = ""

    def clean_username(self):
        username = self.cleaned_data["username"]
        clash = User.objects.filter(username__iexact=username)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError("A user with this name already exists.")
        return username

    def clean_password(self):
        password = self.cleaned_data.get("password")
        if password:
            validate_password(password, self.instance)
        return password


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “claude-desktop on laptop”.")
    scopes = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, help_text="A subset of your roles.")
    expires_in_days = forms.IntegerField(min_value=1, max_value=365, initial=30)

    def __init__(self, *args, roles=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scopes"].choices = [(r, r) for r in ROLES if r in roles]
        self.fields["scopes"].initial = [r for r in roles if r not in ("admin",)]

    @property
    def expires_at(self):
        return timezone.now() + timedelta(days=self.cleaned_data["expires_in_days"])
