"""The Django admin, read-only: every change goes through an operation and the gateway
(role check, approval of guard changes, audit event), so the admin may show rows and
never writes one — no add, change or delete, and no POST reaches any admin view."""

from __future__ import annotations

from functools import wraps

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponseNotAllowed


class ReadOnlyModelAdmin:
    """Mixed in front of every registered ModelAdmin (and its inlines)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_inlines(self, request, obj):
        return [type(f"ReadOnly{i.__name__}", (ReadOnlyModelAdmin, i), {}) for i in super().get_inlines(request, obj)]


class ReadOnlyAdminSite(admin.AdminSite):
    site_header = "Ops console data (read-only)"

    def register(self, model_or_iterable, admin_class=None, **options):
        base = admin_class or admin.ModelAdmin
        super().register(model_or_iterable, type(f"ReadOnly{base.__name__}", (ReadOnlyModelAdmin, base), {}), **options)

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        @wraps(inner)
        def read_only(request, *args, **kwargs):
            if request.method not in ("GET", "HEAD"):
                return HttpResponseNotAllowed(["GET", "HEAD"], "The admin is read-only: changes are operations in the console.")
            return inner(request, *args, **kwargs)

        return read_only

    def login(self, request, extra_context=None):
        # One login: the console's (rate-limited and audited).
        return redirect_to_login(request.get_full_path())
