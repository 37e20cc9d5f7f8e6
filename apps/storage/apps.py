from django.apps import AppConfig


class StorageConfig(AppConfig):
    name = "apps.storage"
    verbose_name = "Storage"
    nav = [(40, "Storage", "storage:index", "core.run_read_ops")]
    role_permissions = {
        "operator": ["storage.download_objects"],
        "admin": ["storage.download_objects"],
    }
