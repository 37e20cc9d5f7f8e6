"""The generic form renderer builds a working form from any input model."""

import enum
from datetime import datetime
from typing import Literal

from django import forms
from pydantic import BaseModel, Field, SecretStr

from apps.core.forms import (
    JSONFormField,
    KeyValueField,
    LinesField,
    RowsField,
    add_invalid_input,
    cleaned_params,
    form_class_for,
    on_field_choices,
)


class Colour(enum.StrEnum):
    BLUE = "blue"
    GREEN = "green"


class Sample(BaseModel):
    name: str = Field(description="Who")
    count: int = 3
    ratio: float | None = None
    enabled: bool = False
    colour: Colour = Colour.BLUE
    mode: Literal["fast", "safe"] = "safe"
    at: datetime | None = None
    tags: list[str] = []
    labels: dict[str, str] = {}
    limits: dict[str, int] = {}
    password: SecretStr | None = None


def test_field_types_widgets_and_defaults():
    form = form_class_for(Sample)()
    f = form.fields
    assert isinstance(f["name"], forms.CharField) and f["name"].required and f["name"].help_text == "Who"
    assert isinstance(f["count"], forms.IntegerField) and f["count"].initial == 3 and not f["count"].required
    assert isinstance(f["ratio"], forms.FloatField)
    assert isinstance(f["enabled"], forms.BooleanField)
    assert [c for c, _ in f["colour"].choices] == ["", "blue", "green"] and f["colour"].initial == "blue"
    assert [c for c, _ in f["mode"].choices] == ["", "fast", "safe"]
    assert isinstance(f["at"], forms.DateTimeField)
    assert isinstance(f["tags"], LinesField) and isinstance(f["labels"], KeyValueField) and isinstance(f["limits"], JSONFormField)
    assert isinstance(f["password"].widget, forms.PasswordInput)
    html = form.as_p()
    assert 'type="password"' in html and "<select" in html and "<textarea" in html


def test_submitted_values_become_params_and_errors_go_back_to_fields():
    form = form_class_for(Sample)(
        {
            "name": "n",
            "count": "5",
            "colour": "green",
            "mode": "fast",
            "tags": "a\n\n b ",
            "labels-key-0": "x",
            "labels-value-0": "1",
            "labels-key-1": "",
            "labels-value-1": "",
        }
    )
    assert form.is_valid(), form.errors
    params = cleaned_params(form)
    model = Sample.model_validate(params)
    assert (model.count, model.colour, model.tags, model.labels, model.enabled) == (5, Colour.GREEN, ["a", "b"], {"x": "1"}, False)
    add_invalid_input(form, {"count": "too many", "labels.x": "bad label", "": "whole form"})
    assert form.errors["count"] == ["too many"] and form.errors["labels"] == ["labels.x: bad label"]
    assert "whole form" in form.non_field_errors()


def test_bad_json_is_a_field_error():
    form = form_class_for(Sample)({"name": "n", "limits": "{nope"})
    assert not form.is_valid() and "Not valid JSON" in form.errors["limits"][0]


def test_key_value_rows_need_a_key_and_fields_offer_current_state():
    form = form_class_for(Sample)({"name": "n", "labels-key-0": "", "labels-value-0": "orphan"})
    assert not form.is_valid() and form.errors["labels"] == ["Every value needs a key."]
    on_field_choices("name", lambda: ["alpha", "beta"])
    try:
        field = form_class_for(Sample)().fields["name"]
        assert isinstance(field, forms.ChoiceField) and [c for c, _ in field.choices] == ["", "alpha", "beta"]
        assert not form_class_for(Sample)({"name": "gamma"}).is_valid()
    finally:
        from apps.core import forms as core_forms

        core_forms._state_choices.pop("name")


def test_suggested_names_leave_the_field_free_text():
    on_field_choices("name", lambda: ["alpha", ("beta", "in staging")], strict=False)
    try:
        form = form_class_for(Sample)({"name": "gamma"})
        assert form.is_valid() and form.cleaned_data["name"] == "gamma"  # a new name is fine
        html = str(form["name"])
        assert 'list="id_name-names"' in html and '<datalist id="id_name-names">' in html
        assert '<option value="alpha">alpha</option><option value="beta">in staging</option>' in html
    finally:
        from apps.core import forms as core_forms

        core_forms._state_choices.pop("name")


def test_a_secret_column_is_never_rendered_back():
    field = RowsField([("name", "name", "text"), ("value", "value", "secret")], label="Env")
    form = type("EnvForm", (forms.Form,), {"env": field})({"env-name-0": "TOKEN", "env-value-0": "s3cret"})
    assert form.is_valid() and form.cleaned_data["env"] == [{"name": "TOKEN", "value": "s3cret"}]
    html = str(form["env"])
    assert 'value="TOKEN"' in html and 'type="password"' in html and "s3cret" not in html
