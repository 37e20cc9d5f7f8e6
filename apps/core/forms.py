"""The generic form renderer: a Django form built from an operation's input model.

Django does the HTML and type coercion; pydantic (in the gateway) stays the
one validator, and its field errors are put back next to their fields.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from django import forms
from django.utils.html import format_html, format_html_join
from pydantic import BaseModel, SecretStr
from pydantic_core import PydanticUndefined


class JSONFormField(forms.CharField):
    """A nested model, dict or free list: edited as JSON text."""

    widget = forms.Textarea(attrs={"rows": 4, "class": "mono"})

    def to_python(self, value):
        value = super().to_python(value)
        if value in ("", None):
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}).") from None

    def prepare_value(self, value):
        if isinstance(value, (dict, list)):
            return json.dumps(value, indent=2)
        return value


class LinesField(forms.CharField):
    """A list of strings, one per line."""

    widget = forms.Textarea(attrs={"rows": 3})

    def to_python(self, value):
        value = super().to_python(value) or ""
        return [line.strip() for line in value.splitlines() if line.strip()]

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value


class KeyValueWidget(forms.Widget):
    """Rows of key and value inputs (the existing pairs, then empty rows to add more): no JSON to type."""

    blank_rows = 3

    def value_from_datadict(self, data, files, name):
        rows, i = [], 0
        while f"{name}-key-{i}" in data:
            rows.append((data.get(f"{name}-key-{i}", ""), data.get(f"{name}-value-{i}", "")))
            i += 1
        return rows

    def value_omitted_from_data(self, data, files, name):
        return f"{name}-key-0" not in data

    def render(self, name, value, attrs=None, renderer=None):
        pairs = list(value.items()) if isinstance(value, dict) else [p for p in (value or []) if p[0] or p[1]]
        pairs += [("", "")] * self.blank_rows
        rows = format_html_join(
            "",
            '<div class="kv-row"><input type="text" name="{0}-key-{1}" value="{2}" aria-label="{3} key {4}">'
            '<input type="text" name="{0}-value-{1}" value="{5}" aria-label="{3} value {4}"></div>',
            ((name, i, k, self.attrs.get("data-label", name), i + 1, v) for i, (k, v) in enumerate(pairs)),
        )
        return format_html('<div class="kv-rows" id="{}">{}</div>', (attrs or {}).get("id", f"id_{name}"), rows)


class KeyValueField(forms.Field):
    """A name -> text mapping (labels, variables), edited as key/value rows."""

    widget = KeyValueWidget

    def to_python(self, value):
        pairs = [(k.strip(), v) for k, v in (value or []) if k.strip() or v]
        missing = [v for k, v in pairs if not k]
        if missing:
            raise forms.ValidationError("Every value needs a key.")
        return dict(pairs) or None

    def widget_attrs(self, widget):
        return {"data-label": self.label or ""}


@dataclass(frozen=True)
class Column:
    """One input of a row: text, number, checkbox, select (of `choices`) or secret (never shown back)."""

    key: str
    label: str
    kind: str = "text"
    choices: tuple[str, ...] = ()


_CELL = {
    "text": '<input type="text" name="{name}" value="{value}" aria-label="{label}">',
    "number": '<input type="number" name="{name}" value="{value}" aria-label="{label}">',
    "secret": '<input type="password" name="{name}" value="" autocomplete="new-password" aria-label="{label}">',
}


class RowsWidget(forms.Widget):
    """A table of rows, one input per column: the existing rows, then empty ones to add more; a row
    ticked "remove" or left with every text input empty is dropped. No JSON, no shell string to type."""

    blank_rows = 2

    def __init__(self, columns: tuple[Column, ...], attrs=None):
        super().__init__(attrs)
        self.columns = columns

    def value_from_datadict(self, data, files, name):
        rows, i = [], 0
        while f"{name}-{i}-row" in data:
            if not data.get(f"{name}-{i}-remove"):
                rows.append({c.key: (f"{name}-{i}-{c.key}" in data) if c.kind == "checkbox" else data.get(f"{name}-{i}-{c.key}", "")
                             for c in self.columns})  # fmt: skip
            i += 1
        return rows  # empty ones too: redrawn, the form keeps the rows a person added

    def value_omitted_from_data(self, data, files, name):
        return f"{name}-0-row" not in data

    def _cell(self, column: Column, name: str, value, label: str):
        if column.kind == "checkbox":
            checked = " checked" if value else ""
            return format_html('<input type="checkbox" name="{}" aria-label="{}"' + checked + ">", name, label)
        if column.kind == "select":
            selected = ((c, " selected" if c == value else "", c) for c in column.choices)
            options = format_html_join("", '<option value="{}"{}>{}</option>', selected)
            return format_html('<select name="{}" aria-label="{}">{}</select>', name, label, options)
        return format_html(_CELL[column.kind], name=name, value="" if value is None else value, label=label)

    def render(self, name, value, attrs=None, renderer=None):
        rows = [r if isinstance(r, dict) else {self.columns[0].key: r} for r in (value or [])] + [{}] * self.blank_rows
        what = self.attrs.get("data-label", name)
        head = format_html_join("", '<th scope="col">{}</th>', ((c.label,) for c in self.columns))
        body = format_html_join("", "<tr>{}</tr>", (
            (format_html_join("", "<td>{}</td>", (
                (self._cell(c, f"{name}-{i}-{c.key}", row.get(c.key, ""), f"{what} {i + 1}: {c.label}"),) for c in self.columns
            )) + format_html(
                '<td><input type="hidden" name="{0}-{1}-row" value="1">'
                '<input type="checkbox" name="{0}-{1}-remove" aria-label="Remove {2} {3}"></td>', name, i, what, i + 1
            ),)
            for i, row in enumerate(rows)
        ))  # fmt: skip
        return format_html(
            '<div class="table-wrap rows" id="{}"><table><thead><tr>{}<th scope="col">Remove</th></tr></thead>'
            "<tbody>{}</tbody></table></div>",
            (attrs or {}).get("id", f"id_{name}"), head, body,
        )  # fmt: skip


class RowsField(forms.Field):
    """A list of rows (dicts by column key) edited as a table; `single=True`: a list of strings, one per row, kept exactly."""

    def __init__(self, columns: tuple[Column, ...], *, single: bool = False, **kwargs):
        self.columns, self.single = columns, single
        kwargs.setdefault("widget", RowsWidget(columns))
        super().__init__(**kwargs)

    def to_python(self, value):
        typed = [c.key for c in self.columns if c.kind in ("text", "number", "secret")]
        rows = [row for row in value or [] if any(row.get(key, "") != "" for key in typed)]
        return [row[self.columns[0].key] for row in rows] if self.single else rows

    def widget_attrs(self, widget):
        return {"data-label": self.label or ""}


# Field name -> current names (environments, connections…): apps register them from their
# AppConfig.ready(); the generic form then offers a select of what exists instead of free text.
_state_choices: dict[str, Callable[[], list[str]]] = {}


def on_field_choices(field: str, names: Callable[[], list[str]]) -> None:
    _state_choices[field] = names


def _unwrap_optional(annotation):
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _choices(annotation) -> list[tuple[str, str]] | None:
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return [(str(m.value), str(m.value)) for m in annotation]
    if typing.get_origin(annotation) is typing.Literal:
        return [(str(v), str(v)) for v in typing.get_args(annotation)]
    return None


def form_field(name: str, info) -> forms.Field:
    annotation, optional = _unwrap_optional(info.annotation)
    required = info.is_required()
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    common = {
        "required": required and annotation is not bool,
        "help_text": info.description or "",
        "label": info.title or name.replace("_", " ").capitalize(),
    }
    if info.default is not PydanticUndefined and info.default is not None:
        default = info.default
        common["initial"] = default.value if isinstance(default, enum.Enum) else default
    choices = _choices(annotation)
    if choices is not None:
        if not required or optional:
            choices = [("", "—")] + choices
        return forms.ChoiceField(choices=choices, **common)
    if annotation is str and name in _state_choices:
        names = _state_choices[name]
        return forms.ChoiceField(choices=lambda: [("", "—")] + [(n, n) for n in names()], **common)
    origin = typing.get_origin(annotation)
    if annotation is bool:
        return forms.BooleanField(**common)
    if annotation is int:
        return forms.IntegerField(**common)
    if annotation is float:
        return forms.FloatField(**common)
    if annotation is datetime:
        return forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), **common)
    if annotation is date:
        return forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **common)
    if annotation is SecretStr or extra.get("secret"):
        return forms.CharField(widget=forms.PasswordInput(render_value=False), strip=False, **common)
    if origin is list and typing.get_args(annotation) in ((str,), ()):
        return LinesField(**common)
    if origin is dict and typing.get_args(annotation) == (str, str):
        return KeyValueField(**common)
    if origin in (list, dict) or annotation in (dict, list) or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return JSONFormField(**common)
    widget = forms.Textarea(attrs={"rows": 4, "class": "mono"}) if extra.get("widget") == "textarea" else None
    return forms.CharField(widget=widget, strip=False, **common) if widget else forms.CharField(**common)


def form_class_for(model: type[BaseModel]) -> type[forms.Form]:
    fields = {name: form_field(name, info) for name, info in model.model_fields.items()}
    return type(f"{model.__name__}Form", (forms.Form,), fields)


def cleaned_params(form: forms.Form) -> dict:
    """Form values as operation params: empty optional fields are left to their defaults."""
    return {k: v for k, v in form.cleaned_data.items() if v not in (None, "") or isinstance(form.fields[k], forms.BooleanField)}


def add_invalid_input(form: forms.Form, errors: dict[str, str]) -> None:
    for field, message in errors.items():
        top = field.split(".", 1)[0]
        form.add_error(top if top in form.fields else None, message if top == field or top not in form.fields else f"{field}: {message}")
