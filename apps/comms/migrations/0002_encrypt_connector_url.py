"""Connector URLs (Teams and generic webhooks carry their key in the URL) are encrypted at rest."""

from django.db import migrations

from apps.core import fields


def _rewrite(schema_editor, convert) -> None:
    # Raw SQL: the historical model reads the column as encrypted on both sides of this migration.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT id, url FROM comms_connector WHERE url <> ''")
        for pk, url in cursor.fetchall():
            cursor.execute("UPDATE comms_connector SET url = %s WHERE id = %s", [convert(url), pk])


def encrypt_urls(apps, schema_editor):
    _rewrite(schema_editor, fields.encrypt)


def decrypt_urls(apps, schema_editor):
    _rewrite(schema_editor, fields.decrypt)


class Migration(migrations.Migration):
    dependencies = [("comms", "0001_initial")]

    operations = [
        migrations.AlterField(
            model_name="connector",
            name="url",
            field=fields.EncryptedTextField(
                blank=True,
                help_text="Slack API base URL, Twilio API base URL or the webhook URL; empty = the default. Stored encrypted.",
            ),
        ),
        migrations.RunPython(encrypt_urls, decrypt_urls),
    ]
