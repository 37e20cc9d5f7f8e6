from django.core.management.base import BaseCommand

from apps.audit.anchors import write_anchor


class Command(BaseCommand):
    help = "Sign the audit chain head now and store it in the anchor file and bucket (beat does it every AUDIT_ANCHOR_SECONDS)."

    def add_arguments(self, parser):
        parser.add_argument("--reason", default="manual")

    def handle(self, *args, reason, **options):
        entry = write_anchor(reason)
        self.stdout.write(f"Anchored #{entry['anchor']['seq']}." if entry else "The audit log is empty: nothing to anchor.")
