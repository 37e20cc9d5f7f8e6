from django.core.management.base import BaseCommand, CommandError

from apps.audit.anchors import write_anchor
from apps.core.errors import OpsError


class Command(BaseCommand):
    help = "Sign the audit chain head now and store it in the anchor file and bucket (beat does it every AUDIT_ANCHOR_SECONDS)."

    def add_arguments(self, parser):
        parser.add_argument("--reason", default="manual")

    def handle(self, *args, reason, **options):
        try:
            entry = write_anchor(reason)
        except OpsError as exc:  # a log cut before its newest anchor, an unreachable bucket: say so, no traceback
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Anchored #{entry['anchor']['seq']}." if entry else "The audit log is empty: nothing to anchor.")
