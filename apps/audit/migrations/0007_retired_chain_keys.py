"""A key change back to a retired chain key is refused by the database, whatever process writes.

Retired keys stay in every process's ring so old events verify, so a process whose ring is older
than the chain's (not restarted after a rotation) would otherwise record a key change back to its
own, retired key and link new events with it. The trigger fires on audit.chain_key events only
(ordinary appends pay nothing): it refuses one whose key was left by an earlier key change, then
records the key it leaves. The table outlives pruning; existing key changes fill it here."""

from django.db import migrations, models

MESSAGE = (
    "a key change back to a retired audit chain key is refused: this process runs an older key ring than the "
    "chain; roll the current AUDIT_CHAIN_KEY out to it and restart it"
)
POSTGRESQL = f"""
CREATE FUNCTION audit_key_forward() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM audit_retiredchainkey r WHERE r.key_id = NEW.key_id) THEN
        RAISE EXCEPTION '{MESSAGE}';
    END IF;
    INSERT INTO audit_retiredchainkey (key_id) VALUES (NEW.params->>'from') ON CONFLICT DO NOTHING;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_key_forward BEFORE INSERT ON audit_auditevent
    FOR EACH ROW WHEN (NEW.operation = 'audit.chain_key') EXECUTE FUNCTION audit_key_forward();
INSERT INTO audit_retiredchainkey (key_id)
    SELECT DISTINCT params->>'from' FROM audit_auditevent WHERE operation = 'audit.chain_key' ON CONFLICT DO NOTHING;
"""
SQLITE = [
    f"""
CREATE TRIGGER audit_key_forward BEFORE INSERT ON audit_auditevent WHEN NEW.operation = 'audit.chain_key'
BEGIN
    SELECT RAISE(ABORT, '{MESSAGE}')
        WHERE EXISTS (SELECT 1 FROM audit_retiredchainkey r WHERE r.key_id = NEW.key_id);
    INSERT OR IGNORE INTO audit_retiredchainkey (key_id) VALUES (json_extract(NEW.params, '$.from'));
END;
""",
    """INSERT OR IGNORE INTO audit_retiredchainkey (key_id)
    SELECT DISTINCT json_extract(params, '$.from') FROM audit_auditevent WHERE operation = 'audit.chain_key';""",
]


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in {"postgresql": [POSTGRESQL], "sqlite": SQLITE}.get(vendor, []):
        schema_editor.execute(statement, params=None)


def backwards(apps, schema_editor):
    schema_editor.execute(
        "DROP TRIGGER IF EXISTS audit_key_forward" + (" ON audit_auditevent" if schema_editor.connection.vendor == "postgresql" else ""),
        params=None,
    )
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS audit_key_forward()", params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_append_key")]

    operations = [
        migrations.CreateModel(
            name="RetiredChainKey",
            fields=[("key_id", models.CharField(max_length=16, primary_key=True, serialize=False))],
        ),
        migrations.RunPython(forwards, backwards),
    ]
