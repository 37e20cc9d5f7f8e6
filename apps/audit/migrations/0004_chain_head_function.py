"""On PostgreSQL, taking the chain lock and reading the chain head is one round
trip: a PL/pgSQL function (each statement in a volatile function reads a fresh
snapshot, so the head it returns is the one committed before the lock was
granted). The lock is held until commit, so this shortens every append's hold."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION audit_chain_head(lock_id bigint, OUT head_seq bigint, OUT head_hash varchar) AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_id);
    SELECT e.seq, e.hash INTO head_seq, head_hash FROM audit_auditevent e ORDER BY e.seq DESC LIMIT 1;
END;
$$ LANGUAGE plpgsql VOLATILE;
"""
DROP = "DROP FUNCTION IF EXISTS audit_chain_head(bigint)"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_target_prefix_index")]
    operations = [migrations.RunPython(forwards, backwards)]
