"""A job keeps the number of the approval request it runs under, not a foreign key up into approvals: the
column and its values stay (only the constraint goes); approvals 0006 records the link on its side (ApprovalRun)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0004_credential"),
        ("approvals", "0005_withdrawn"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterField(
                    model_name="job",
                    name="approval",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        db_constraint=False,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="jobs",
                        to="approvals.approvalrequest",
                    ),  # fmt: skip
                ),
            ],
            state_operations=[
                migrations.RemoveField(model_name="job", name="approval"),
                migrations.AddField(
                    model_name="job", name="approval_id", field=models.BigIntegerField(blank=True, db_index=True, null=True)
                ),
            ],
        ),
    ]
