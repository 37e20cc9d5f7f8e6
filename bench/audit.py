"""Audit log: keyed chain appends against plain inserts of the same rows into a table of
the same shape, from the same 8 writer processes, sides alternated (plain, chain, appender,
plain, chain, appender ...) so a change of machine load falls on all; the ratios, and the chain
verified afterwards. "chain" is each process appending itself; "appender" is the same
record() calls handed to the audit appender process (apps/audit/appender.py). Then filtered
browse latency at 10k, 1M and 10M rows (keyset pages: flat).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/opsconsole REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/audit.py [--sizes 10000,1000000,10000000] [--writes 4000] [--rounds 3]
"""

import argparse
import multiprocessing
import os
import random
import shutil
import signal
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import psutil

from harness import fmt, percentiles, scratch_database  # isort: skip

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, connections
from django.test import Client, override_settings
from django.utils import timezone

from apps.audit.appender import AppenderServer
from apps.audit.models import AuditEvent
from apps.audit.verify import verify_chain
from apps.audit.writer import _FIELDS, record
from tests.support.processes import exit_on_sigterm

WRITERS = 8
PLAIN = "bench_plain_event"


def _event(i: int) -> dict:
    return {"operation": "bench.write", "outcome": "ok", "channel": "system", "target": f"w{i}", "params": {"i": i}}


def _plain_insert(cursor, sql: str, i: int) -> None:
    """The same row record() writes, inserted on its own (autocommit: one round trip and a durable commit each)."""
    event = AuditEvent(**{k: v for k, v in _event(i).items()}, app="bench", at=timezone.now(), key_id="0" * 16,
                       prev_hash="0" * 64, hash="0" * 64)  # fmt: skip
    values = [f.get_db_prep_save(getattr(event, f.attname), connection) for f in _FIELDS if f.attname != "seq"]
    cursor.execute(sql, values)


def _use(db_name: str) -> None:
    connections["default"].settings_dict["NAME"] = db_name
    connections["default"].close()


def _default_sigterm() -> None:
    """A forked child dies of SIGTERM at once: the bench's own handler (exit_on_sigterm, for its
    clean-up) unwinding a pool worker blocked on the pool's queue lock can hang Pool.terminate."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _appender(db_name: str, path: str) -> None:
    _default_sigterm()
    _use(db_name)
    AppenderServer(path).serve_forever()


def _writer(args):
    db_name, side, count, threads, appender_socket = args
    _use(db_name)
    if threads > 1:  # concurrent requests of one web process: record()'s group commit batches them
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(_writer, [(db_name, side, count // threads, 1, appender_socket)] * threads))
        return
    if side != "plain":
        with override_settings(AUDIT_APPENDER_SOCKET=appender_socket if side == "appender" else ""):
            for i in range(count):
                record(**_event(i))
    else:
        columns = [f.column for f in _FIELDS if f.attname != "seq"]
        sql = f"INSERT INTO {PLAIN} (seq, {', '.join(columns)}) VALUES (nextval('{PLAIN}_seq'), {', '.join(['%s'] * len(columns))})"
        with connection.cursor() as cursor:
            for i in range(count):
                _plain_insert(cursor, sql, i)
    connections["default"].close()


def _cpu(processes: list) -> list[float]:
    times = [sum(p.cpu_times()[:2]) for p in processes]
    machine = psutil.cpu_times()
    return [times[0], sum(times[1:]), sum(machine) - machine.idle - machine.iowait]


def _run(pool, db_name: str, side: str, per: int, threads: int, appender_socket: str) -> float:
    start = time.perf_counter()
    pool.map(_writer, [(db_name, side, per, threads, appender_socket)] * WRITERS)
    return time.perf_counter() - start


def bench_writes(db_name: str, total: int, rounds: int, threads: int, appender_socket: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {PLAIN} (LIKE audit_auditevent INCLUDING ALL)")
        cursor.execute(f"CREATE SEQUENCE {PLAIN}_seq")
    per = total // WRITERS
    seconds = {"plain": 0.0, "chain": 0.0, "appender": 0.0}
    cpu = {side: [0.0, 0.0, 0.0] for side in seconds}  # CPU seconds: the appender process, the writers, the machine
    connections["default"].close()
    fork = multiprocessing.get_context("fork")
    appender = fork.Process(target=_appender, args=(db_name, appender_socket), daemon=True)
    appender.start()
    try:
        appender_cpu = psutil.Process(appender.pid)
        with fork.Pool(WRITERS, initializer=_default_sigterm) as pool:
            writers_cpu = [psutil.Process(child.pid) for child in multiprocessing.active_children() if child.pid != appender.pid]
            for _ in range(rounds):
                for side in seconds:
                    before = _cpu([appender_cpu, *writers_cpu])
                    seconds[side] += _run(pool, db_name, side, per, threads, appender_socket)
                    after = _cpu([appender_cpu, *writers_cpu])
                    cpu[side] = [cpu[side][i] + after[i] - before[i] for i in (0, 1, 2)]
    finally:
        appender.terminate()
        appender.join()
    events = per * WRITERS * rounds
    rate = {side: events / spent for side, spent in seconds.items()}
    result = verify_chain()
    with connection.cursor() as cursor:  # a batch's events share one time stamp (taken under the lock)
        cursor.execute("SELECT count(*)::float / count(DISTINCT at) FROM audit_auditevent WHERE append_key <> ''")
        (per_batch,) = cursor.fetchone()
    print(f"writes from {WRITERS} processes x {threads} thread(s), {rounds} alternating rounds of {per * WRITERS} events a side:")
    print(f"  plain inserts                   {rate['plain']:,.0f} rows/s")
    print(f"  chain appends, each process     {rate['chain']:,.0f} events/s   ratio {rate['chain'] / rate['plain']:.2f}x")
    appender_ratio = rate["appender"] / rate["plain"]
    print(f"  chain appends, appender process {rate['appender']:,.0f} events/s   ratio {appender_ratio:.2f}x  (goal >= 0.8x)")
    print(f"  events per appender batch: {per_batch:.1f}")
    for side, (appender_s, writers_s, machine_s) in cpu.items():
        print(
            f"  CPU ms per event, {side:<8}: writers {writers_s / events * 1000:.3f}, appender process {appender_s / events * 1000:.3f},"
            f" whole machine {machine_s / events * 1000:.3f} (PostgreSQL, kernel, anything else running)"
        )
    print(f"  chain intact: {result.ok} ({result.checked} events)")


FILL_SQL = """
INSERT INTO audit_auditevent (seq, at, actor, token, channel, operation, app, target, params, outcome, error,
                              duration_ms, request_id, approval_id, correlation_id, key_id, prev_hash, hash)
SELECT s, now() - make_interval(secs => (%(top)s - s) * 0.01),
       'user' || (s %% 50), '', (ARRAY['web','mcp','worker','system'])[1 + s %% 4],
       'app' || (s %% 7) || '.op' || (s %% 13), 'app' || (s %% 7), 'target/' || (s %% 100000), '{}'::jsonb,
       CASE WHEN s %% 97 = 0 THEN 'denied' WHEN s %% 31 = 0 THEN 'failed' ELSE 'ok' END, '',
       1.5, md5(s::text), '', md5(s::text), '', md5((s - 1)::text), md5(s::text)
FROM generate_series(%(start)s, %(top)s) AS s
"""


def fill_to(rows: int) -> None:
    """Synthetic rows straight in SQL (their hashes are not a valid chain: browse does not care)."""
    current = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    step = 1_000_000
    with connection.cursor() as cursor:
        for start in range(current + 1, rows + 1, step):
            cursor.execute(FILL_SQL, {"start": start, "top": min(rows, start + step - 1)})
        cursor.execute("ANALYZE audit_auditevent")


def browse_queries(rows: int) -> dict[str, dict]:
    deep = random.Random(7)
    return {
        "newest page": {},
        "by operation": {"operation": "app3.op5"},
        "by actor": {"actor": "user17"},
        "by outcome (rare)": {"outcome": "denied"},
        "by target prefix": {"target": "target/4242"},
        "by app + channel": {"app": "app2", "channel": "mcp"},
        "deep keyset page": {"before": str(deep.randint(rows // 4, rows // 2))},
    }


def bench_browse(sizes: list[int], repeat: int) -> None:
    user = get_user_model().objects.create_user("bench-auditor")
    user.groups.add(Group.objects.get(name="auditor"))
    client = Client()
    client.force_login(user)
    for rows in sizes:
        fill_to(rows)
        samples_all = []
        print(f"\nbrowse at {rows:,} rows")
        for label, query in browse_queries(rows).items():
            samples = []
            for _ in range(repeat):
                start = time.perf_counter()
                response = client.get("/audit/", query)
                samples.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200
            samples_all += samples
            print(f"  {label:<18} {fmt(percentiles(samples))}")
        print(f"  {'all filters':<18} {fmt(percentiles(samples_all))}   (goal: p95 <= 50 ms at 10M)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="writer threads per process (1 = the issue's 8 writers)")
    parser.add_argument("--sizes", default="10000,1000000,10000000")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("bench/audit.py measures PostgreSQL: set DATABASE_URL=postgres://...")
    exit_on_sigterm()
    workdir = tempfile.mkdtemp(prefix="opsconsole-bench-audit-")
    try:
        with scratch_database() as name, override_settings(OPS_RATE_LIMITS={}):
            bench_writes(name, args.writes, args.rounds, args.threads, os.path.join(workdir, "appender.sock"))
            bench_browse([int(s) for s in args.sizes.split(",") if s], args.repeat)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
