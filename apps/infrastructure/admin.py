from django.contrib import admin

from .models import Deployment, Environment, Runbook, Service

# Secrets (TLS key, secret env, runbook env) are left out: they are set through the operations.


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    list_display = ["name", "engine_url", "protected", "quorum"]
    exclude = ["tls_client_key"]


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["name", "environment", "strategy", "current_revision"]
    exclude = ["secret_env"]


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ["pk", "service", "strategy", "status", "created_at"]
    list_filter = ["status", "strategy"]
    readonly_fields = [f.name for f in Deployment._meta.fields]


@admin.register(Runbook)
class RunbookAdmin(admin.ModelAdmin):
    list_display = ["name", "risky", "enabled", "timeout_seconds"]
    exclude = ["env"]
