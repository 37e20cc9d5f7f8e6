"""The link from a request to the jobs that run it moves to approvals (ApprovalRun): one row for every job that
core 0005 left holding a request's number; back, each job's number again from its row (none: no number)."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery

BATCH = 1000


def jobs_to_runs(apps, schema_editor):
    Job, ApprovalRun = apps.get_model("core", "Job"), apps.get_model("approvals", "ApprovalRun")
    linked = Job.objects.filter(approval_id__isnull=False).order_by("pk").values_list("pk", "approval_id")
    batch = []
    for job_id, request_id in linked.iterator(chunk_size=BATCH):
        batch.append(ApprovalRun(job_id=job_id, request_id=request_id))
        if len(batch) == BATCH:
            ApprovalRun.objects.bulk_create(batch)
            batch = []
    ApprovalRun.objects.bulk_create(batch)


def runs_to_jobs(apps, schema_editor):
    Job, ApprovalRun = apps.get_model("core", "Job"), apps.get_model("approvals", "ApprovalRun")
    Job.objects.update(approval_id=Subquery(ApprovalRun.objects.filter(job_id=OuterRef("pk")).values("request_id")[:1]))


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0005_withdrawn"),
        ("core", "0005_job_approval_number"),
    ]

    operations = [
        migrations.CreateModel(
            name="ApprovalRun",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("job", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="core.job")),
                (
                    "request",
                    models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="runs", to="approvals.approvalrequest"),
                ),
            ],
        ),
        migrations.AddField(
            model_name="approvalrequest",
            name="jobs",
            field=models.ManyToManyField(related_name="+", through="approvals.ApprovalRun", to="core.job"),
        ),
        migrations.RunPython(jobs_to_runs, runs_to_jobs),
    ]
