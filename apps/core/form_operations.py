"""Configuration edited in a Django ModelForm, written through the gateway.

`form_operations("comms.connector", Connector, ConnectorForm, permission=...)` registers
`comms.save_connector` and `comms.delete_connector`. The form stays the validator (its
errors come back as field errors) and the gateway does the rest — role check, audit
event — so a setup page has no write path of its own. Params are the submitted form
data, `{"id": …, "data": {field: [values]}}`; the audit log shows them redacted: every
field the form renders as a password input, whatever its name, and any sensitive name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.db import models, transaction
from django.db.models import ProtectedError
from django.utils.datastructures import MultiValueDict
from pydantic import BaseModel, Field, create_model

from .errors import InvalidInput, OpsError
from .jobs import Context
from .operations import Risk, operation

DATA_HELP = "Form fields by name; a list for several values."


class FormWrite(BaseModel):
    id: int | None = Field(None, description="The row to change; none creates one.")
    data: dict[str, Any] = Field(default_factory=dict, description=DATA_HELP)


class FormDelete(BaseModel):
    id: int


class FormSaved(BaseModel):
    id: int | None
    name: str


def submitted(request) -> dict[str, list[str]]:
    """A POST as operation data (every value a list, like the browser sent it)."""
    return {k: v for k, v in request.POST.lists() if k != "csrfmiddlewaretoken"}


def _bound_data(data: dict) -> MultiValueDict:
    return MultiValueDict({k: v if isinstance(v, list) else [v] for k, v in data.items()})


def _first(value) -> str:
    return str((value[0] if value else "") if isinstance(value, list) else value or "")


def form_operations(
    name: str,
    model: type[models.Model],
    form_class: type[forms.ModelForm],
    *,
    permission: str,
    rows: Callable[[Context], models.QuerySet] | None = None,
    prepare: Callable[[Context, models.Model], None] | None = None,
    saved: Callable[[models.Model, models.Model | None], None] | None = None,
    formset: type[forms.BaseInlineFormSet] | None = None,
    deleting: Callable[[Context, models.Model], None] | None = None,
) -> None:
    """Register `<app>.save_<noun>` and `<app>.delete_<noun>` for `name` = "<app>.<noun>".

    rows(ctx): where ids are looked up (default: every row) — a person's own rows only, say.
    prepare(ctx, obj): fills what the form does not (who created it) before the row is saved.
    saved(obj, old): after the save, with a copy of the row as it was (None when created).
    formset: an inline formset saved with the row (a dashboard's panels).
    deleting(ctx, obj): before a delete, in its transaction; raises an OpsError to refuse it — a
    row that others name by value (in JSON, where no foreign key protects it).
    """
    app, noun = name.split(".", 1)
    # The form's write-only inputs are secrets: the audit log and job params never show their values.
    secret = sorted(f for f, field in form_class.base_fields.items() if isinstance(field.widget, forms.PasswordInput))
    write_input = create_model(
        f"{model.__name__}Write",
        __base__=FormWrite,
        data=(dict[str, Any], Field(default_factory=dict, description=DATA_HELP, json_schema_extra={"secret_keys": secret})),
    )
    label = model._meta.verbose_name

    def lookup(ctx: Context, pk: int):
        row = (rows(ctx) if rows else model.objects.all()).filter(pk=pk).first()
        if row is None:
            raise InvalidInput({"id": f"There is no {label} #{pk}."})
        return row

    def save(ctx: Context, params: FormWrite) -> FormSaved:
        instance = lookup(ctx, params.id) if params.id is not None else None
        old = model.objects.get(pk=instance.pk) if instance is not None else None
        data = _bound_data(params.data)
        form = form_class(data, instance=instance)
        panels = formset(data, instance=instance) if formset else None
        if not form.is_valid() or (panels is not None and not panels.is_valid()):
            errors = dict(form.errors)
            if panels is not None:
                errors |= {f"panels.{i}.{k}": v for i, e in enumerate(panels.errors) for k, v in e.items()}
                if panels.non_form_errors():
                    errors["panels"] = panels.non_form_errors()
            raise InvalidInput({("" if k == "__all__" else k): " ".join(v) for k, v in errors.items()})
        with transaction.atomic():
            obj = form.save(commit=False)
            if prepare:
                prepare(ctx, obj)
            obj.save()
            form.save_m2m()
            if panels is not None:
                panels.instance = obj
                panels.save()
        if saved:
            saved(obj, old)
        return FormSaved(id=obj.pk, name=str(obj))

    def delete(ctx: Context, params: FormDelete) -> FormSaved:
        with transaction.atomic():
            row = lookup(ctx, params.id)
            text = str(row)
            if deleting:
                deleting(ctx, row)
            try:
                row.delete()
            except ProtectedError:
                raise OpsError(f"{text} is still in use; remove what refers to it first.") from None
        return FormSaved(id=None, name=text)

    save.__annotations__["params"] = write_input  # the input model, with this form's secret keys
    save.__doc__ = f"Create or change a {label} (the console's setup form; each field as the form names it)."
    delete.__doc__ = f"Delete a {label}."

    def target(p: FormWrite) -> str:
        return next((_first(p.data[k]) for k in ("name", "slug", "cidr", "title") if p.data.get(k)), str(p.id or ""))

    for verb, func, target_of in (("save", save, target), ("delete", delete, lambda p: str(p.id))):
        func.__name__ = func.__qualname__ = f"{verb}_{app}_{noun}"
        operation(f"{app}.{verb}_{noun}", risk=Risk.WRITE, permission=permission, target=target_of, exposed=False)(func)
