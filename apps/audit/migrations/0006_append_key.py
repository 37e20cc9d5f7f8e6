from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0005_correlation_and_sinks"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="append_key",
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.UniqueConstraint(condition=models.Q(("append_key", ""), _negated=True), fields=("append_key",), name="audit_append_key_once"),
        ),
    ]
