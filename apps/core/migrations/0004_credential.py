"""The API-token foreign key becomes an opaque credential reference (an API token or an OAuth agent) and
its scopes: existing rows keep their token as "api:<pk>" (apps/core/migrations/_credential.py)."""

from django.db import migrations, models

from apps.core.migrations._credential import credential_to_token, token_to_credential


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0003_search_permission"),
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(model_name="job", name="credential", field=models.CharField(blank=True, max_length=40)),
        migrations.AddField(model_name="job", name="scopes", field=models.JSONField(blank=True, default=list)),
        migrations.RunPython(token_to_credential("core.Job"), credential_to_token("core.Job")),
        migrations.RemoveField(model_name="job", name="token"),
    ]
