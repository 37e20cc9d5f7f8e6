from django.contrib import admin

from .models import Dashboard, Panel, PrometheusSource


@admin.register(PrometheusSource)
class PrometheusSourceAdmin(admin.ModelAdmin):
    list_display = ["name", "base_url", "alertmanager_url", "auth_type", "timeout_seconds"]
    exclude = ["secret"]  # set on the console's source page, where it is write-only


class PanelInline(admin.TabularInline):
    model = Panel
    extra = 0


@admin.register(Dashboard)
class DashboardAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "source", "refresh_seconds", "builtin"]
    inlines = [PanelInline]
