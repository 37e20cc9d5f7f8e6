"""The keyed chain (each event records the key id that links it; "" = the legacy SHA-256
chain, still verified as before), pruning behind a signed anchor, and the legal hold.

On PostgreSQL:
- audit_chain_head also returns the head's key id (the writer records a key change first
  when it differs from its own key).
- The append-only trigger lets exactly one kind of DELETE through: the one audit_prune()
  makes, of events at or below a recorded prune (whose signed anchor the chain then starts
  from), while no legal hold is active. UPDATE stays refused."""

from django.db import migrations, models

CREATE = """
DROP FUNCTION IF EXISTS audit_chain_head(bigint);
CREATE FUNCTION audit_chain_head(lock_id bigint, OUT head_seq bigint, OUT head_hash varchar, OUT head_key_id varchar) AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_id);
    SELECT e.seq, e.hash, e.key_id INTO head_seq, head_hash, head_key_id FROM audit_auditevent e ORDER BY e.seq DESC LIMIT 1;
END;
$$ LANGUAGE plpgsql VOLATILE;

CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND OLD.seq <= coalesce(nullif(current_setting('opsconsole.audit_prune_through', true), '')::bigint, 0)
       AND EXISTS (SELECT 1 FROM audit_prune p WHERE p.through_seq >= OLD.seq)
       AND NOT coalesce((SELECT h.active FROM audit_legalhold h ORDER BY h.id DESC LIMIT 1), false) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION audit_prune(through bigint) RETURNS bigint AS $$
DECLARE removed bigint;
BEGIN
    PERFORM set_config('opsconsole.audit_prune_through', through::text, true);
    DELETE FROM audit_auditevent WHERE seq <= through;
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM set_config('opsconsole.audit_prune_through', '', true);
    RETURN removed;
END;
$$ LANGUAGE plpgsql VOLATILE;
"""
DROP = """
DROP FUNCTION IF EXISTS audit_prune(bigint);
DROP FUNCTION IF EXISTS audit_chain_head(bigint);
CREATE FUNCTION audit_chain_head(lock_id bigint, OUT head_seq bigint, OUT head_hash varchar) AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_id);
    SELECT e.seq, e.hash INTO head_seq, head_hash FROM audit_auditevent e ORDER BY e.seq DESC LIMIT 1;
END;
$$ LANGUAGE plpgsql VOLATILE;
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0003_postgresql_speed'),
    ]

    operations = [
        migrations.CreateModel(
            name='LegalHold',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('active', models.BooleanField()),
                ('reason', models.CharField(blank=True, max_length=500)),
                ('at', models.DateTimeField()),
                ('by', models.CharField(max_length=150)),
            ],
            options={
                'ordering': ['-id'],
            },
        ),
        migrations.CreateModel(
            name='Prune',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('through_seq', models.BigIntegerField(unique=True)),
                ('anchor', models.JSONField()),
                ('at', models.DateTimeField()),
                ('by', models.CharField(max_length=150)),
            ],
            options={
                'ordering': ['-through_seq'],
            },
        ),
        migrations.AlterModelOptions(
            name='auditevent',
            options={'ordering': ['-seq'], 'permissions': [('view_audit_log', 'Browse the audit log'), ('export_audit_log', 'Export the audit log'), ('manage_retention', 'Prune the audit log and place or lift a legal hold')]},
        ),
        migrations.AddField(
            model_name='auditevent',
            name='key_id',
            field=models.CharField(blank=True, help_text='The chain key that links this event; empty = legacy SHA-256.', max_length=16),
        ),
        migrations.RunPython(forwards, backwards),
    ]
