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
from datetime import date, datetime

from django import forms
from django.forms.utils import flatatt
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


class RowsWidget(forms.Widget):
    """Rows of small inputs, one per column (the existing rows, then empty rows to add more): a
    list of records edited without JSON or script. A column is (key, label, kind) with kind
    "text", "number", "checkbox", "secret" (write-only) or a list of choices. `masked=(column, flag)`: in rows whose
    `flag` checkbox is set, `column` is write-only (a password input, its value never rendered)."""

    blank_rows = 2

    def __init__(self, columns=(), masked=None, attrs=None):
        super().__init__(attrs)
        self.columns, self.masked = list(columns), masked

    def value_from_datadict(self, data, files, name):
        rows, first = [], self.columns[0][0]
        while f"{name}-{first}-{len(rows)}" in data:
            i = len(rows)
            rows.append(
                {k: (f"{name}-{k}-{i}" in data) if kind == "checkbox" else data.get(f"{name}-{k}-{i}", "") for k, _, kind in self.columns}
            )
        return rows

    def value_omitted_from_data(self, data, files, name):
        return f"{name}-{self.columns[0][0]}-0" not in data

    def _cell(self, name: str, i: int, row: dict, column) -> str:
        key, label, kind = column
        value, attrs = row.get(key), {"name": f"{name}-{key}-{i}", "aria-label": f"{self.attrs.get('data-label', name)} {label} {i + 1}"}
        if isinstance(kind, list):
            options = format_html_join(
                "", '<option value="{}"{}>{}</option>', ((v, " selected" if str(value) == v else "", t) for v, t in kind)
            )
            return format_html("<select{}>{}</select>", flatatt(attrs), options)
        if kind == "checkbox":
            masks = {"data-masks": f"{name}-{self.masked[0]}-{i}"} if self.masked and self.masked[1] == key else {}
            return format_html('<input type="checkbox"{}{}>', flatatt(attrs | masks), " checked" if value else "")
        if kind == "secret" or (self.masked and self.masked[0] == key and row.get(self.masked[1])):
            return format_html('<input type="password"{} placeholder="unchanged when empty" autocomplete="off">', flatatt(attrs))
        return format_html('<input type="{}"{} value="{}">', kind, flatatt(attrs), "" if value is None else value)

    def render(self, name, value, attrs=None, renderer=None):
        rows = [r for r in (value or []) if any(v not in ("", None, False) for v in r.values())] + [{}] * self.blank_rows
        head = format_html_join("", "<th>{}</th>", ((label,) for _, label, _ in self.columns))
        body = format_html_join(
            "",
            "<tr>{}</tr>",
            ((format_html_join("", "<td>{}</td>", ((self._cell(name, i, r, c),) for c in self.columns)),) for i, r in enumerate(rows)),
        )
        table_id = (attrs or {}).get("id", f"id_{name}")
        return format_html('<table class="rows" id="{}"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', table_id, head, body)


class KeyValueWidget(RowsWidget):
    """Key and value rows: no JSON to type."""

    blank_rows = 3

    def __init__(self, attrs=None):
        super().__init__([("key", "key", "text"), ("value", "value", "text")], attrs=attrs)


class RowsField(forms.Field):
    """A list of records (dicts of the columns' text) edited as RowsWidget rows; empty rows are dropped."""

    def __init__(self, columns=None, masked=None, **kwargs):
        if columns:
            kwargs.setdefault("widget", RowsWidget(columns, masked))
        super().__init__(**kwargs)

    def to_python(self, value):
        return [r for r in (value or []) if any(v not in ("", False) for v in r.values())]

    def widget_attrs(self, widget):
        return {"data-label": self.label or ""}


class KeyValueField(RowsField):
    """A name -> text mapping (labels, variables), edited as key/value rows."""

    widget = KeyValueWidget

    def to_python(self, value):
        pairs = [(r["key"].strip(), r["value"]) for r in super().to_python(value)]
        if any(not k for k, _ in pairs):
            raise forms.ValidationError("Every value needs a key.")
        return dict(pairs) or None

    def prepare_value(self, value):
        return [{"key": k, "value": v} for k, v in value.items()] if isinstance(value, dict) else value


class SuggestInput(forms.TextInput):
    """Free text with the names that exist offered as suggestions (a <datalist>): for fields where
    a new name is legitimate or the list is only what the console last saw."""

    def __init__(self, names: Callable[[], list[tuple[str, str]]]):
        super().__init__(attrs={"autocomplete": "off"})
        self.names = names

    def render(self, name, value, attrs=None, renderer=None):
        list_id = f"{(attrs or {}).get('id', f'id_{name}')}-names"
        field = super().render(name, value, {**(attrs or {}), "list": list_id}, renderer)
        options = format_html_join("", '<option value="{}">{}</option>', self.names())
        return format_html('{}<datalist id="{}">{}</datalist>', field, list_id, options)


# Field name -> current names (environments, connections, services, buckets…): apps register them from
# their AppConfig.ready(); the generic form then offers a select of what exists instead of free text
# (strict), or suggests them in a text input (not strict: new names are fine, or the list may be stale).
_state_choices: dict[str, tuple[Callable[[], list], bool]] = {}


def on_field_choices(field: str, names: Callable[[], list], *, strict: bool = True) -> None:
    """names() returns names, or (value, label) pairs."""
    _state_choices[field] = (names, strict)


def _pairs(names: Callable[[], list]) -> Callable[[], list[tuple[str, str]]]:
    return lambda: [(n, n) if isinstance(n, str) else tuple(n) for n in names()]


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
        names, strict = _state_choices[name]
        if not strict:
            return forms.CharField(widget=SuggestInput(_pairs(names)), **common)
        return forms.ChoiceField(choices=lambda: [("", "—")] + _pairs(names)(), **common)
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
