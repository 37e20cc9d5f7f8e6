"""The demo's S3: moto's server in memory, filled with demo buckets and a backup
each time it starts (it keeps nothing). bin/console runs it under its supervisor."""

import threading

import boto3
from django.conf import settings
from django.core.management.base import BaseCommand

from apps.accounts.actors import Actor
from apps.core.gateway import invoke

from ...demo import DEMO_CONNECTION
from ...models import Connection

OBJECTS = {
    "demo-assets": {
        "site/index.html": b"<!doctype html><title>demo</title><h1>Demo site</h1>\n",
        "site/app.css": b"body { font-family: sans-serif; }\n",
        "site/config/.env": b"DEBUG=true\nAWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n",
        "reports/2026-11.csv": b"day,requests\n1,1200\n2,1350\n",
    },
    "demo-backups": {},
}


class Command(BaseCommand):
    help = "Serve the demo's in-memory S3 (moto) with demo buckets, objects and a backup."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=settings.STORAGE_DEMO_S3_PORT)

    def handle(self, *args, port, **options):
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        # The peer's own content is put in with boto3, as a user would have it before the console;
        # the backup is the console's work, through the gateway.
        conn = Connection.objects.get(name=DEMO_CONNECTION)
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name=conn.region,
                          aws_access_key_id=conn.access_key_id, aws_secret_access_key=conn.secret_access_key)  # fmt: skip
        for bucket, objects in OBJECTS.items():
            s3.create_bucket(Bucket=bucket)
            for key, body in objects.items():
                s3.put_object(Bucket=bucket, Key=key, Body=body)
        params = {"connection": DEMO_CONNECTION, "bucket": "demo-assets", "prefix": "site/", "dest_bucket": "demo-backups"}
        invoke("storage.backup_create", Actor.system(), params, channel="system")
        self.stdout.write(f"demo S3 (moto) on http://127.0.0.1:{port}: {', '.join(OBJECTS)}")
        threading.Event().wait()
