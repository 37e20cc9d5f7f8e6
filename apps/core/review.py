"""The "what changes" step of an editor: before saving, a person sees each field's old → new value
and whether the change lowers a guard (and so goes to another person's approval); the submitted
form rides along sealed (encrypted, bound to its author and to the state it was reviewed against),
so secrets typed into it are never echoed back into the page."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.contrib import messages
from django.shortcuts import render
from django.utils.datastructures import MultiValueDict

from .errors import InvalidInput
from .fields import decrypt, encrypt
from .forms import add_invalid_input
from .gateway import approval_needed, check_permission, validate
from .operations import get
from .web import actor_of, call_from_form, done_or_pending

MISSING = "—"


@dataclass(frozen=True)
class Change:
    field: str
    old: str
    new: str


def shown(value) -> str:
    if value is None or value == "":
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value if isinstance(value, str) and value.strip() == value and '"' not in value else json.dumps(value, ensure_ascii=False)


def _leaves(value, path: str, out: dict) -> dict:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _leaves(item, f"{path}.{key}", out)
    elif isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
        for i, item in enumerate(value):
            _leaves(item, f"{path}[{i + 1}]", out)
    else:
        out[path] = value
    return out


def changes(before: dict | None, after: dict, labels: dict[str, str]) -> list[Change]:
    """Each changed leaf as label old → new, in the order of `after` (a new object: every value set)."""
    out = []
    for key, value in after.items():
        label = labels.get(key, key.replace("_", " "))
        old = _leaves((before or {}).get(key), label, {})
        new = _leaves(value, label, {})
        for path in dict.fromkeys([*old, *new]):
            if old.get(path) != new.get(path) and (before is not None or new.get(path) not in (None, "", [], {})):
                out.append(Change(path, shown(old.get(path)), shown(new.get(path))))
    return out


def lowers_guard(request, operation: str, params: dict) -> bool:
    """Whether this call would wait for someone else's approval: the input checked and the rule applied
    as the gateway will (field errors raise InvalidInput), nothing run, nothing written."""
    op = get(operation)
    check_permission(op, actor_of(request))
    return approval_needed(op, validate(op, params)) is not None


def seal(request, data: MultiValueDict, changed: list[Change]) -> str:
    kept = {k: v for k, v in data.lists() if k not in ("csrfmiddlewaretoken", "sealed", "confirm", "edit", "approval_reason")}
    return encrypt(json.dumps({"user": request.user.pk, "path": request.path, "data": kept, "changes": [vars(c) for c in changed]}))


def unseal(request) -> tuple[MultiValueDict, list[Change]]:
    """The reviewed form data and the changes the person saw; refuses a form sealed for someone or somewhere else."""
    try:
        sealed = json.loads(decrypt(request.POST["sealed"]))
    except ValueError:
        raise InvalidInput({"": "This confirmation is not valid any more: review the changes again."}) from None
    if sealed["user"] != request.user.pk or sealed["path"] != request.path:
        raise InvalidInput({"": "This confirmation was made for another person or page."})
    return MultiValueDict(sealed["data"]), [Change(**c) for c in sealed["changes"]]


def edit(request, make_form, *, operation: str, params_of, changes_of, template: str, context: dict, done: str, then):
    """An editor's whole flow. GET: the form (prefilled by `make_form`). POST: the form checked, then
    the changes shown for confirmation — or "nothing to change", nothing written; "more rows" only
    re-renders. Confirmed: the operation through the gateway, then done — or its approval request."""
    sealed = "sealed" in request.POST
    data, reviewed = unseal(request) if sealed else (request.POST or None, None)
    form = make_form(data)
    if data is None or "more_rows" in request.POST or "edit" in request.POST:
        return render(request, template, {**context, "form": form})
    if not form.is_valid():
        return render(request, template, {**context, "form": form}, status=422)
    params = params_of(form)
    try:
        lowering = lowers_guard(request, operation, params)
    except InvalidInput as exc:
        add_invalid_input(form, exc.errors)
        return render(request, template, {**context, "form": form}, status=exc.status_code)
    changed = changes_of(params)
    if not changed:
        messages.info(request, "Nothing to change: nothing was saved.")
        return render(request, template, {**context, "form": form})
    if sealed and changed == reviewed:
        outcome, status = call_from_form(request, form, operation, params, reason=request.POST.get("approval_reason", ""))
        if outcome:
            return done_or_pending(request, outcome, done, then)
        return render(request, template, {**context, "form": form}, status=status)
    if sealed:
        messages.warning(request, "It changed since you reviewed it: check the changes again.")
    review = {"changes": changed, "lowering": lowering, "sealed": seal(request, data, changed), "operation": get(operation)}
    return render(request, "core/review.html", {**context, **review})
