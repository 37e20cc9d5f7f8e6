from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    verbose_name = "Accounts"

    def ready(self):
        from apps.core import hooks

        from . import agent_services, agent_tokens, signals  # noqa: F401  (OAuth agent operations; login audit)
        from .actors import Actor
        from .roles import sync_roles

        hooks.provide("actors", Actor)  # who a user, a token or the console itself is, to core

        post_migrate.connect(sync_roles, dispatch_uid="accounts.sync_roles")
        if settings.SSO_ENABLED:
            from .sso import role_map

            role_map()  # a wrong OIDC_ROLE_MAP stops the start, not the first sign-in
