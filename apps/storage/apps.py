import shlex
import sys

from django.apps import AppConfig


class StorageConfig(AppConfig):
    name = "apps.storage"
    verbose_name = "Storage"
    nav = [(40, "Storage", "storage:index", "core.run_read_ops")]
    subnav = [("Connections", "storage:index", "core.run_read_ops"), ("Compliance", "storage:compliance", "core.run_read_ops")]
    role_permissions = {
        "operator": ["storage.download_objects"],
        "admin": ["storage.download_objects"],
    }

    def ready(self):
        from apps.core import hooks
        from apps.core.forms import on_field_choices

        from . import bucket_names
        from .client import MISSING, connect
        from .models import Connection
        from .services.common import write_args

        hooks.provide("buckets", hooks.Buckets(connect=connect, write_args=write_args, missing=frozenset(MISSING)))

        def connections():
            return list(Connection.objects.values_list("name", flat=True))

        for field in ("connection", "dest_connection", "target_connection"):
            on_field_choices(field, connections)
        for field in ("bucket", "dest_bucket", "target_bucket"):
            on_field_choices(field, bucket_names.known, strict=False)  # new buckets are fine (a backup's destination)

    def console_processes(self, data_dir, env) -> dict[str, str]:
        """The demo's in-memory S3 (moto's server), when moto is installed."""
        from .demo import moto_installed

        if not moto_installed():
            return {}
        return {"s3": f"{shlex.quote(sys.executable)} manage.py demo_s3"}
