"""Demo users (one per role) and demo data. Idempotent: existing users keep
their passwords unless --reset-passwords; new credentials are printed once."""

import secrets
from importlib import import_module

from celery import current_app as celery_app
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.test.utils import override_settings

from apps.accounts.roles import ROLES


class Command(BaseCommand):
    help = "Create demo users for every role and each app's demo data."

    def add_arguments(self, parser):
        parser.add_argument("--reset-passwords", action="store_true", help="Give every demo user a new password.")

    def handle(self, *args, reset_passwords=False, **options):
        User = get_user_model()
        created = []
        for role in ROLES:
            user, new = User.objects.get_or_create(username=role, defaults={"email": f"{role}@example.test"})
            user.groups.add(Group.objects.get(name=role))
            if new or reset_passwords:
                password = secrets.token_urlsafe(12)
                user.set_password(password)
                user.save()
                created.append((role, password))
        # No worker, Redis or browser runs yet: the demo's jobs (scans, notifications) run here,
        # inline, and their live events go to an in-memory layer nobody listens to.
        eager, celery_app.conf.task_always_eager = celery_app.conf.task_always_eager, True
        try:
            with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}):
                for config in apps.get_app_configs():
                    self._seed(config.name)
        finally:
            celery_app.conf.task_always_eager = eager
        if created:
            self.stdout.write(self.style.WARNING("\n  Demo users — shown only now, note them:"))
            for role, password in created:
                self.stdout.write(f"    {role:<9} password: {password}")
            self.stdout.write("  (forgot them? manage.py seed_demo --reset-passwords)\n")
        else:
            self.stdout.write("  Demo users exist already (manage.py seed_demo --reset-passwords for new passwords).")

    def _seed(self, app: str) -> None:
        try:
            demo = import_module(f"{app}.demo")
        except ModuleNotFoundError as exc:
            if exc.name != f"{app}.demo":
                raise
            return
        demo.seed(self.stdout)
