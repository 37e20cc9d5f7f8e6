"""The browser filters targets by prefix (`LIKE 'x%'`). PostgreSQL's btree on a
column with a non-C collation cannot serve LIKE, so a rare prefix scanned the whole
log newest-first (290 ms at 1M rows); a pattern_ops index finds its rows directly."""

from django.db import migrations

CREATE = "CREATE INDEX IF NOT EXISTS audit_target_prefix ON audit_auditevent (target varchar_pattern_ops, seq DESC)"
DROP = "DROP INDEX IF EXISTS audit_target_prefix"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_trigger")]
    operations = [migrations.RunPython(forwards, backwards)]
