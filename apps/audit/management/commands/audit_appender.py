import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.audit.appender import AppenderServer


class Command(BaseCommand):
    help = "Append every writer process's audit events to the chain in batches (PostgreSQL; see apps/audit/appender.py)."

    def add_arguments(self, parser):
        parser.add_argument("--socket", default=settings.AUDIT_APPENDER_SOCKET, help="Unix socket path (default: AUDIT_APPENDER_SOCKET)")

    def handle(self, *args, socket, **options):
        if not socket:
            raise CommandError("No socket: pass --socket or set AUDIT_APPENDER_SOCKET.")
        try:
            server = AppenderServer(socket)
        except (RuntimeError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        # SIGTERM/SIGINT: stop taking events, append what is queued, then exit; a writer cut off
        # mid-way finds out from the chain whether its event is in (appender_client.py).
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: server.shutdown())
        self.stdout.write(f"audit appender listening on {socket}", ending="\n")
        self.stdout.flush()
        try:
            server.serve_forever()
        finally:
            server.server_close()
