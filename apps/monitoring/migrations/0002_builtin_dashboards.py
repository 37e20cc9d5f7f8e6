from django.db import migrations


def install(apps, schema_editor):
    from apps.monitoring import builtin

    builtin.install(apps.get_model("monitoring", "Dashboard"), apps.get_model("monitoring", "Panel"))


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0001_initial")]
    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
