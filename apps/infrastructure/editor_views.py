"""The environment and runbook editors: prefilled from what is stored, a "what changes" step
before saving, and the save through the gateway (lowering a guard lands on its approval request)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import reverse

from apps.core import review
from apps.core.forms import cleaned_params, form_class_for
from apps.core.web import console_view, require_perm

from .forms import runbook_editor_form, runbook_params
from .models import Environment, Runbook
from .runbooks import ParamSpec
from .services.environments import SaveEnvironmentInput, environment_values
from .services.runbooks import runbook_values

ENVIRONMENT_LABELS = {name: (info.title or name.replace("_", " ")).lower() for name, info in SaveEnvironmentInput.model_fields.items()}
RUNBOOK_LABELS = {"argv": "argv", "env": "env", "timeout_seconds": "timeout (s)", "risky": "runs need approval"}


def environment_changes(stored: Environment | None, params: dict) -> list[review.Change]:
    checked = SaveEnvironmentInput.model_validate(params)
    after = checked.model_dump(exclude={"tls_client_key"})
    changed = review.changes(environment_values(stored) if stored else None, after, ENVIRONMENT_LABELS)
    if checked.tls_client_key:  # a secret: said to change, never shown
        changed.append(review.Change("tls client key", "(stored)" if stored and stored.tls_client_key else review.MISSING, "(new key)"))
    return changed


@console_view
def environment_edit(request, env: str | None = None):
    require_perm(request, "infrastructure.manage_environments")
    stored = get_object_or_404(Environment, name=env) if env else None
    form_class = form_class_for(SaveEnvironmentInput)

    def make_form(data):
        form = form_class(data, initial=environment_values(stored) if stored else None)
        if stored is not None:
            form.fields["name"].disabled = True
        return form

    title = f"Environment {stored.name}" if stored else "New environment"
    return review.edit(
        request, make_form, operation="infrastructure.save_environment", params_of=cleaned_params,
        changes_of=lambda params: environment_changes(stored, params), template="infrastructure/editor.html",
        context={"title": title, "back": reverse("infrastructure:overview"), "back_label": "Infrastructure", "editing": stored},
        done="Saved the environment.", then="infrastructure:overview",
    )  # fmt: skip


def runbook_changes(stored: Runbook | None, env_names: list[str], params: dict) -> list[review.Change]:
    """Env values are secrets: a variable shows as kept, new or removed, never its value."""
    after = {k: v for k, v in params.items() if k not in ("env", "keep_env")}
    before = runbook_values(stored) if stored else None
    after["parameters"] = [ParamSpec.model_validate(p).model_dump(mode="json") for p in params["parameters"]]
    after["env"] = {**{n: "(stored value)" for n in params["keep_env"]}, **{n: "(new value)" for n in params["env"]}}
    if before is not None:
        before["env"] = {n: "(stored value)" for n in env_names}
    return review.changes(before, after, RUNBOOK_LABELS)


@console_view
def runbook_edit(request, name: str | None = None):
    require_perm(request, "infrastructure.manage_runbooks")
    stored = get_object_or_404(Runbook, name=name) if name else None
    env_names = sorted((stored.env if stored else None) or {})
    values = runbook_values(stored) if stored else None
    title = f"Runbook {stored.name}" if stored else "New runbook"
    return review.edit(
        request, lambda data: runbook_editor_form(values, env_names, data), operation="infrastructure.save_runbook",
        params_of=lambda form: runbook_params(form.cleaned_data, env_names),
        changes_of=lambda params: runbook_changes(stored, env_names, params), template="infrastructure/editor.html",
        context={"title": title, "back": reverse("infrastructure:runbooks"), "back_label": "Runbooks", "editing": stored, "rows": True},
        done="Saved the runbook.", then="infrastructure:runbooks",
    )  # fmt: skip
