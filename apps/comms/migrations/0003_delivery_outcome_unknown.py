from django.db import migrations, models

# The note text that said so before the flag existed (apps/comms/dispatch.py's OUTCOME_UNKNOWN then).
SAID_UNKNOWN = "An attempt timed out after sending"


def flag_the_deliveries_whose_note_said_so(apps, schema_editor):
    apps.get_model("comms", "Delivery").objects.filter(note__contains=SAID_UNKNOWN).update(outcome_unknown=True)


class Migration(migrations.Migration):
    dependencies = [
        ("comms", "0002_encrypt_connector_url"),
    ]

    operations = [
        migrations.AddField(
            model_name="delivery",
            name="outcome_unknown",
            field=models.BooleanField(
                default=False, help_text="An attempt timed out after sending: the peer may have it (stays set once set)."
            ),
        ),
        migrations.RunPython(flag_the_deliveries_whose_note_said_so, migrations.RunPython.noop),
    ]
