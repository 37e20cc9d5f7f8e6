"""Forms where the generic operation form is not enough: the deploy panel and
a runbook's typed parameters."""

from __future__ import annotations

from django import forms

from apps.core.forms import RowsField, form_field

from .runbooks import ParamSpec
from .services.runbooks import SaveRunbookInput
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


PARAMETER_COLUMNS = (
    ("name", "name", "text"),
    ("type", "type", [(t, t) for t in ("string", "int", "bool", "choice", "path")]),
    ("required", "required", "checkbox"),
    ("default", "default", "text"),
    ("description", "description", "text"),
    ("choices", "choices (comma-separated)", "text"),
    ("pattern", "pattern", "text"),
    ("minimum", "minimum", "number"),
    ("maximum", "maximum", "number"),
    ("max_length", "max length", "number"),
    ("allow_leading_dash", "allow leading -", "checkbox"),
)
NUMBERS = ("minimum", "maximum", "max_length")
EDITOR_FIELDS = ("name", "description", "argv", "parameters", "working_dir", "env", "timeout_seconds", "output_cap_bytes",
                 "cpu_seconds", "memory_mb", "max_processes", "max_file_mb", "risky", "enabled")  # fmt: skip


def _typed_default(kind: str, text: str):
    if text == "":
        return None
    if kind == "int" and text.lstrip("-").isdigit():
        return int(text)
    if kind == "bool" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def parameter_row(spec: dict) -> dict:
    """A stored parameter as a row of the parameters table."""
    row = {key: "" if spec.get(key) is None else spec[key] for key, _, _ in PARAMETER_COLUMNS}
    row["default"] = str(row["default"]).lower() if isinstance(row["default"], bool) else row["default"]
    row["choices"] = ", ".join(spec.get("choices") or [])
    return row


def parameter_of(row: dict) -> dict:
    """A row of the parameters table as a ParamSpec dict (numbers that are not are left for pydantic to refuse)."""
    spec = {**row, "default": _typed_default(row["type"], row["default"]), "pattern": row["pattern"] or None}
    spec["choices"] = [c.strip() for c in row["choices"].split(",") if c.strip()]
    for key in NUMBERS:
        spec[key] = int(row[key]) if row[key].lstrip("-").isdigit() else (row[key] or None)
    if spec["max_length"] is None:
        del spec["max_length"]
    return spec


def runbook_editor_form(stored: dict | None, env_names: list[str], data=None) -> forms.Form:
    """The runbook editor: argv as rows (one argument each, kept exactly), the parameters as a table,
    env as name/value rows (values never shown: empty keeps the stored one), limits, risky."""
    fields = {name: form_field(name, SaveRunbookInput.model_fields[name]) for name in EDITOR_FIELDS}
    fields["argv"] = RowsField(
        [("arg", "argument", "text")], label="Command (argv)",
        help_text="One argument per row, passed exactly as typed: no shell, no quoting. {name} inserts a parameter. "
                  "Empty a row to remove it.",
    )  # fmt: skip
    fields["parameters"] = RowsField(PARAMETER_COLUMNS, required=False, label="Parameters")
    fields["env"] = RowsField(
        [("name", "name", "text"), ("value", "value", "secret")], required=False, label="Environment",
        help_text="Stored encrypted; values are never shown. An empty value keeps the stored one.",
    )  # fmt: skip
    form_class = type("RunbookEditorForm", (forms.Form,), fields)
    initial = None
    if stored is not None:
        initial = {**stored, "argv": [{"arg": a} for a in stored["argv"]], "env": [{"name": n, "value": ""} for n in env_names]}
        initial["parameters"] = [parameter_row(p) for p in stored["parameters"]]
    form = form_class(data, initial=initial)
    if stored is not None:
        form.fields["name"].disabled = True
    return form


def runbook_params(cleaned: dict, env_names: list[str]) -> dict:
    """The editor's values as save_runbook takes them."""
    typed = [key for key, _, kind in PARAMETER_COLUMNS if kind in ("text", "number")]  # a blank row still has a type selected
    params = {**cleaned, "argv": [row["arg"] for row in cleaned["argv"]]}
    params["parameters"] = [parameter_of(row) for row in cleaned["parameters"] if any(row[key] for key in typed)]
    rows = cleaned["env"]
    params["env"] = {r["name"]: r["value"] for r in rows if r["value"] or r["name"] not in env_names}
    params["keep_env"] = [r["name"] for r in rows if not r["value"] and r["name"] in env_names]
    return params
