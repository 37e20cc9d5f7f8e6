"""Forms where the generic operation form is not enough: the deploy panel and
a runbook's typed parameters."""

from __future__ import annotations

from django import forms

from .runbooks import ParamSpec
from .specs import STRATEGIES


class DeployForm(forms.Form):
    image = forms.CharField(required=False, help_text="Empty: the service's image.")
    strategy = forms.ChoiceField(required=False, choices=[("", "service default")] + [(s, s.replace("_", "-")) for s in STRATEGIES])
    reason = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="For the approvers, when approval is needed."
    )

    def params(self, environment: str, service: str) -> dict:
        data = {"environment": environment, "service": service}
        data.update({k: v for k, v in self.cleaned_data.items() if v and k != "reason"})
        return data


class BuildForm(forms.Form):
    environment = forms.ChoiceField()
    tag = forms.CharField(help_text="repository:tag")
    context = forms.FileField(required=False, help_text="A .tar of the build context (with its Dockerfile).")
    context_dir = forms.CharField(required=False, help_text="Or a directory under the build root.")

    def __init__(self, *args, environments=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["environment"].choices = [(e, e) for e in environments]


def runbook_form(specs: list[ParamSpec], data=None) -> forms.Form:
    """A form with one field per runbook parameter; the operation validates the values."""
    fields = {}
    for spec in specs:
        common = {"required": False, "help_text": spec.description, "label": spec.name}
        if spec.type == "bool":
            fields[spec.name] = forms.BooleanField(initial=bool(spec.default), **common)
        elif spec.type == "choice":
            fields[spec.name] = forms.ChoiceField(choices=[("", "—")] + [(c, c) for c in spec.choices], initial=spec.default, **common)
        else:
            fields[spec.name] = forms.CharField(initial=spec.default, strip=False, **common)
    form = type("RunbookForm", (forms.Form,), fields)(data)
    return form
