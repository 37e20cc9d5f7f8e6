"""The five roles of the console, as Django groups with permissions.

Each app may add permissions to roles by setting `role_permissions` on its
AppConfig (`{"operator": ["storage.download_objects"]}`); `sync_roles()` runs
after every migrate and makes the groups match.
"""

from __future__ import annotations

from django.apps import apps as django_apps

VIEWER, OPERATOR, APPROVER, AUDITOR, ADMIN = "viewer", "operator", "approver", "auditor", "admin"
ROLES = (VIEWER, OPERATOR, APPROVER, AUDITOR, ADMIN)

ROLE_DESCRIPTIONS = {
    VIEWER: "See dashboards, deployments, findings and incidents; run read-only operations.",
    OPERATOR: "Run read and write operations; request risky ones (they wait for approval).",
    APPROVER: "Approve or reject other people's requests, never their own.",
    AUDITOR: "Browse, filter and export the audit log; nothing else.",
    ADMIN: "Manage users, roles, connectors, policies and API tokens; run any operation.",
}

# core.search: everyone may search; the search shows each role only the kinds it may open.
BASE_PERMISSIONS = {
    VIEWER: ["core.search", "core.run_read_ops", "accounts.use_api_tokens"],
    OPERATOR: ["core.search", "core.run_read_ops", "core.run_write_ops", "core.request_risky_ops", "accounts.use_api_tokens"],
    APPROVER: ["core.search", "core.run_read_ops", "approvals.approve_requests", "accounts.use_api_tokens"],
    AUDITOR: ["core.search", "audit.view_audit_log", "audit.export_audit_log", "accounts.use_api_tokens"],
    ADMIN: [
        "core.search",
        "accounts.use_api_tokens",
        "core.run_read_ops",
        "core.run_write_ops",
        "core.request_risky_ops",
        "accounts.manage_users",
        "core.manage_connectors",
        "approvals.manage_policies",
        "audit.view_audit_log",
        "audit.export_audit_log",
    ],
}


def role_permissions() -> dict[str, set[str]]:
    """Every role's permissions: the base ones plus those the apps contribute."""
    result = {role: set(perms) for role, perms in BASE_PERMISSIONS.items()}
    for config in django_apps.get_app_configs():
        for role, perms in getattr(config, "role_permissions", {}).items():
            result[role].update(perms)
    return result


def sync_roles(**_kwargs) -> None:
    from django.contrib.auth.models import Group, Permission

    wanted = role_permissions()
    all_perms = {f"{p.content_type.app_label}.{p.codename}": p for p in Permission.objects.select_related("content_type")}
    for role, perms in wanted.items():
        group, _ = Group.objects.get_or_create(name=role)
        missing = sorted(perms - all_perms.keys())
        if missing:  # a permission whose model is not migrated yet: the next migrate fixes it
            perms = perms - set(missing)
        group.permissions.set([all_perms[p] for p in perms])
    from .actors import forget_permissions

    forget_permissions()
