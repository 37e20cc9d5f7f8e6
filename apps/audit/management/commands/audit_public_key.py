from django.core.management.base import BaseCommand

from apps.audit.keys import public_pem


class Command(BaseCommand):
    help = "Print the public key that verifies audit anchors and export bundles (python -m opsconsole_audit_verify --key)."

    def handle(self, *args, **options):
        self.stdout.write(public_pem().decode(), ending="")
