"""The API-token foreign key becomes an opaque credential reference (an API token or an OAuth agent) and
its scopes: existing rows keep their token as "api:<pk>" (apps/core/migrations/_credential.py)."""

from django.db import migrations, models

from apps.core.migrations._credential import credential_to_token, token_to_credential


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0003_group_quorum"),
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(model_name="approvalrequest", name="credential", field=models.CharField(blank=True, max_length=40)),
        migrations.AddField(model_name="approvalrequest", name="scopes", field=models.JSONField(blank=True, default=list)),
        migrations.RunPython(token_to_credential("approvals.ApprovalRequest"), credential_to_token("approvals.ApprovalRequest")),
        migrations.RemoveField(model_name="approvalrequest", name="token"),
    ]
