"""The five roles as groups. Their permissions are kept in sync after every
migrate by apps.accounts.roles.sync_roles (permissions only exist once every
app's models are migrated)."""

from django.db import migrations

ROLES = ("viewer", "operator", "approver", "auditor", "admin")


def create_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for role in ROLES:
        Group.objects.get_or_create(name=role)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
