"""Editing a storage connection: the connection_save form prefilled from what is stored
(credentials never: left empty they are kept), and a connection test (an audited bucket listing)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.core import operations
from apps.core.errors import OpsError
from apps.core.forms import cleaned_params, form_class_for
from apps.core.gateway import check_permission
from apps.core.web import actor_of, call, call_from_form, console_view

from .models import Connection

SECRETS = ("access_key_id", "secret_access_key")
STORED = (
    "endpoint_url", "region", "addressing_style", "credentials", "env_prefix", "default_encryption", "kms_key_id", "verify_tls",
    "direct_uploads",
)  # fmt: skip


def _form(request, conn: Connection | None):
    form_class = form_class_for(operations.get("storage.connection_save").input)
    if conn is None:
        return form_class(request.POST or None)
    form = form_class(request.POST or None, initial={"name": conn.name, **{f: getattr(conn, f) for f in STORED}})
    form.fields["name"].disabled = True  # a new name is a new connection: "Add connection"
    if conn.has_stored_credentials:
        for name in SECRETS:
            form.fields[name].help_text = "Stored encrypted (never shown): leave empty to keep it, or give both keys to replace them."
    return form


@console_view
def connection_edit(request, connection: str | None = None):
    check_permission(operations.get("storage.connection_save"), actor_of(request))
    conn = get_object_or_404(Connection, name=connection) if connection else None
    form, status = _form(request, conn), 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            outcome, status = call_from_form(request, form, "storage.connection_save", cleaned_params(form))
            if outcome:
                messages.success(request, f"Saved connection {outcome.result.name}.")
                return redirect("storage:index")
    return render(request, "storage/connection_form.html", {"form": form, "conn": conn}, status=status)


@console_view
@require_POST
def connection_test(request, connection: str):
    """Lists the connection's buckets through the gateway (audited): the credentials and endpoint work."""
    check_permission(operations.get("storage.connection_save"), actor_of(request))  # a button of the admins' edit page
    try:
        found = call(request, "storage.buckets", {"connection": connection}).result.buckets
    except OpsError as exc:
        messages.error(request, f"Connection test failed: {exc.message}")
    else:
        messages.success(request, f"{connection} answers: {len(found)} bucket{'' if len(found) == 1 else 's'} visible.")
    return redirect("storage:index")
