"""The service-spec editor: a typed form over `infrastructure.save_service`'s input.

Variables as rows with a secret toggle (secret values are write-only: never
rendered, kept when left empty), ports as rows, the healthcheck's fields of its
kind, resources, labels, and only the chosen strategy's options. The operation
still validates; its errors are put next to these fields (`field_of`).
"""

from __future__ import annotations

from django import forms

from apps.core.forms import KeyValueField, LinesField, RowsField

from .models import Service
from .plans import STRATEGY_OPTIONS
from .specs import STRATEGIES, AnalysisStep, HealthCheck, StrategyOptions

# The HealthCheck fields each kind reads (health.probe, Rollout.wait_healthy): the others are ignored.
HEALTH_FIELDS = {
    "http": ("port", "path", "expect_status", "timeout_seconds", "interval_seconds", "healthy_within_seconds", "healthy_threshold"),
    "tcp": ("port", "timeout_seconds", "interval_seconds", "healthy_within_seconds", "healthy_threshold"),
    "running": ("interval_seconds", "healthy_within_seconds", "healthy_threshold"),
}
STEP_KINDS = [("", "—"), ("set_weight", "set weight"), ("pause", "pause"), ("analysis", "analysis")]
ANALYSIS_COLUMNS = [(name, name.replace("_", " "), "number" if name.endswith(("seconds", "count", "limit")) else "text")
                    for name in AnalysisStep.model_fields]  # fmt: skip


def _shown_when(select: str, prefix: str, fields_of: dict) -> dict[str, str]:
    """Field -> "id_<select>:<the values that use it>", for fields not every value uses (the page's script hides the others)."""
    fields = {f for names in fields_of.values() for f in names}
    users = {f: [value for value, names in fields_of.items() if f in names] for f in fields}
    return {prefix + f: f"id_{select}:{' '.join(values)}" for f, values in users.items() if len(values) < len(fields_of)}


SHOWN_WHEN = _shown_when("healthcheck_kind", "healthcheck_", HEALTH_FIELDS) | _shown_when("strategy", "strategy_options_", STRATEGY_OPTIONS)


def _number(label: str, kind=forms.IntegerField, **kwargs) -> forms.Field:
    return kind(label=label, required=False, **kwargs)


def _help(model, name: str) -> str:
    return model.model_fields[name].description or ""


class ServiceSpecForm(forms.Form):
    environment = forms.ChoiceField()
    name = forms.CharField(max_length=40, help_text="Lower-case letters, digits and dashes.")
    image = forms.CharField(max_length=255, help_text="repository:tag or repository@sha256:digest")
    command = LinesField(required=False, help_text="Overrides the image's command: one argument per line (no shell).")
    replicas = forms.IntegerField(min_value=1, max_value=50, initial=1)
    network = forms.CharField(required=False, help_text="Docker network; empty: one per service.")
    env = RowsField(
        [("name", "name", "text"), ("value", "value", "text"), ("secret", "secret", "checkbox")],
        masked=("value", "secret"),
        label="Environment variables",
        required=False,
        help_text="A secret value is stored encrypted and never shown again: leave it empty to keep it.",
    )
    ports = RowsField(
        [("container", "container port", "number"), ("host", "host port", "number")],
        label="Ports",
        required=False,
        help_text="Host port: the stable port the service's router publishes; empty: a free port.",
    )
    healthcheck_kind = forms.ChoiceField(
        label="Health check", choices=[(k, k) for k in HEALTH_FIELDS], help_text=_help(HealthCheck, "kind")
    )
    healthcheck_port = _number("Probe port", help_text=_help(HealthCheck, "port"))
    healthcheck_path = forms.CharField(label="Path", required=False)
    healthcheck_expect_status = _number("Expected status")
    healthcheck_timeout_seconds = _number("Timeout (s)", forms.FloatField)
    healthcheck_interval_seconds = _number("Interval (s)", forms.FloatField)
    healthcheck_healthy_within_seconds = _number(
        "Healthy within (s)", forms.FloatField, help_text=_help(HealthCheck, "healthy_within_seconds")
    )
    healthcheck_healthy_threshold = _number("Healthy threshold", help_text=_help(HealthCheck, "healthy_threshold"))
    resources_memory = forms.CharField(label="Memory limit", required=False, help_text='e.g. "256m" or "1g"; empty: no limit.')
    resources_cpus = _number("CPUs", forms.FloatField, help_text="empty: no limit.")
    resources_pids = _number("Processes", help_text="Maximum number of processes in a replica; empty: no limit.")
    labels = KeyValueField(label="Labels", required=False)
    strategy = forms.ChoiceField(choices=[(s, s.replace("_", "-")) for s in STRATEGIES], initial="rolling")
    strategy_options_batch_size = _number("Batch size", help_text=_help(StrategyOptions, "batch_size"))
    strategy_options_keep_old_seconds = _number(
        "Keep old colour (s)", forms.FloatField, help_text=_help(StrategyOptions, "keep_old_seconds")
    )
    strategy_options_steps = RowsField(
        [("kind", "step", STEP_KINDS), ("weight", "weight %", "number"), ("seconds", "pause seconds", "number"), *ANALYSIS_COLUMNS],
        label="Canary steps",
        required=False,
        help_text="One step a row: a weight, a pause (empty seconds: until promoted) or an analysis.",
    )
    strategy_options_drain_seconds = _number("Drain (s)", forms.FloatField, help_text=_help(StrategyOptions, "drain_seconds"))
    strategy_options_stop_timeout = _number("Stop timeout (s)", help_text=_help(StrategyOptions, "stop_timeout"))

    shown_when = SHOWN_WHEN

    def __init__(self, *args, service: Service | None = None, environments=(), **kwargs):
        self.secret_names = set((service.secret_env or {}) if service else ())
        initial = initial_of(service) | (kwargs.pop("initial", None) or {})
        super().__init__(*args, initial=initial, **kwargs)
        self.fields["environment"].choices = [(e, e) for e in environments]
        if service:  # the editor changes a service; another name or environment is another service
            self.fields["environment"].disabled = self.fields["name"].disabled = True

    def clean(self):
        data = super().clean()
        if "env" in data:
            try:
                data["env_params"] = self._env_params(data["env"])
            except forms.ValidationError as exc:
                self.add_error("env", exc)
        return data

    def _env_params(self, rows: list[dict]) -> dict:
        plain, secrets, kept = {}, {}, set()
        for row in rows:
            name = row["name"].strip()
            if not name:
                raise forms.ValidationError("Every value needs a name.")
            if name in plain or name in secrets or name in kept:
                raise forms.ValidationError(f"{name} is given twice.")
            if not row["secret"]:
                plain[name] = row["value"]
            elif row["value"]:
                secrets[name] = row["value"]
            elif name in self.secret_names:
                kept.add(name)
            else:
                raise forms.ValidationError(f"The new secret {name} needs a value.")
        return {"env": plain, "secret_env": secrets, "remove_secret_env": sorted(self.secret_names - kept - set(secrets))}

    def params(self) -> dict:
        """The operation's input: the healthcheck's fields of its kind and the strategy's own options only."""
        d = self.cleaned_data
        kind, strategy = d["healthcheck_kind"], d["strategy"]
        healthcheck = {"kind": kind} | _given(d, "healthcheck_", HEALTH_FIELDS[kind])
        options = _given(d, "strategy_options_", STRATEGY_OPTIONS[strategy])
        if strategy == "canary":
            options["steps"] = [_step(row) for row in d["strategy_options_steps"]]
        return {
            "environment": d["environment"], "name": d["name"], "image": d["image"], "command": d["command"] or None,
            **d["env_params"], "replicas": d["replicas"], "network": d["network"] or None, "labels": d["labels"] or {},
            "ports": [{"container": _or_none(r["container"]), "host": _or_none(r["host"])} for r in d["ports"]],
            "healthcheck": healthcheck, "resources": _given(d, "resources_", ("memory", "cpus", "pids")),
            "strategy": strategy, "strategy_options": options,
        }  # fmt: skip


def _given(data: dict, prefix: str, names) -> dict:
    """The fields filled in (the others take the model's defaults)."""
    return {n: data[prefix + n] for n in names if prefix + n in data and data[prefix + n] not in (None, "")}


def _or_none(text: str) -> str | None:
    return None if text == "" else text


def _step(row: dict) -> dict:
    if row["kind"] == "set_weight":
        return {"set_weight": _or_none(row["weight"])}
    if row["kind"] == "pause":  # empty seconds: until someone promotes; 0 is no pause
        return {"pause": {"seconds": _or_none(row["seconds"])}}
    if row["kind"] == "analysis":
        return {"analysis": {n: row[n] for n, _, _ in ANALYSIS_COLUMNS if row[n] != ""}}
    return {}  # the operation says a step is one of three


def _step_row(step) -> dict:
    if step.set_weight is not None:
        return {"kind": "set_weight", "weight": step.set_weight}
    if step.pause is not None:
        return {"kind": "pause", "seconds": step.pause.seconds}
    return {"kind": "analysis", **step.analysis.model_dump()}


def initial_of(service: Service | None) -> dict:
    """The form's values for a service (never a secret value), or the models' defaults for a new one."""
    spec = service.parsed_spec if service else None
    options = StrategyOptions.model_validate((service.strategy_options if service else None) or {})
    check = spec.healthcheck if spec else HealthCheck()
    initial = {f"healthcheck_{k}": v for k, v in check.model_dump().items()}
    initial |= {f"strategy_options_{k}": v for k, v in options.model_dump().items() if k != "steps"}
    initial["strategy_options_steps"] = [_step_row(step) for step in options.steps]
    if spec is None:
        return initial
    secrets = [{"name": name, "value": "", "secret": True} for name in sorted(service.secret_env or {})]
    return initial | {
        "environment": service.environment.name, "name": service.name, "image": spec.image, "command": spec.command or [],
        "replicas": spec.replicas, "network": spec.network or "", "labels": spec.labels, "strategy": service.strategy,
        "env": [{"name": k, "value": v, "secret": False} for k, v in spec.env.items()] + secrets,
        "ports": [p.model_dump() for p in spec.ports], **{f"resources_{k}": v for k, v in spec.resources.model_dump().items()},
    }  # fmt: skip


def field_of(path: str) -> str:
    """The form field of an operation parameter's error path (`healthcheck.port` → healthcheck_port)."""
    parts = path.split(".")
    if parts == ["healthcheck"]:
        return "healthcheck_port"  # the one rule on the whole check: an http or tcp probe needs a port
    if parts[0] in ("secret_env", "remove_secret_env"):
        return "env"
    for n in range(len(parts), 0, -1):
        if "_".join(parts[:n]) in ServiceSpecForm.base_fields:
            return ".".join(["_".join(parts[:n]), *parts[n:]])
    return path
