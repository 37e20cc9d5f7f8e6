from django.core.management.base import BaseCommand, CommandError

from apps.audit.offsite import CheckpointError
from apps.audit.verify import verify_chain


class Command(BaseCommand):
    help = "Verify the audit log's keyed chain and compare its head with the newest signed anchor (file or bucket)."

    def handle(self, *args, **options):
        try:
            result = verify_chain()
        except CheckpointError as exc:
            raise CommandError(f"Audit chain not verified: {exc.message}") from exc
        if not result.ok:
            raise CommandError(f"Audit chain BROKEN after {result.checked} good events: {result.problem}")
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {result.checked} events verified."))
        if result.window:
            self.stdout.write(self.style.WARNING(f"Not vouched for: {result.window}"))
