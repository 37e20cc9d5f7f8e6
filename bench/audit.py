"""Audit log: keyed chain appends against plain inserts of the same rows into a table of
the same shape, from the same 8 writer processes, sides alternated (plain, chain, plain,
chain ...) so a change of machine load falls on both; the ratio, and the chain verified
afterwards. Then filtered browse latency at 10k, 1M and 10M rows (keyset pages: flat).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/opsconsole REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/audit.py [--sizes 10000,1000000,10000000] [--writes 4000] [--rounds 3]
"""

import argparse
import multiprocessing
import random
import time
from concurrent.futures import ThreadPoolExecutor

from harness import fmt, percentiles, scratch_database  # isort: skip

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, connections
from django.test import Client, override_settings
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.audit.verify import verify_chain
from apps.audit.writer import _FIELDS, record

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


def _writer(args):
    db_name, side, count, threads = args
    connections["default"].settings_dict["NAME"] = db_name
    connections["default"].close()
    if threads > 1:  # concurrent requests of one web process: record()'s group commit batches them
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(_writer, [(db_name, side, count // threads, 1)] * threads))
        return
    if side == "chain":
        for i in range(count):
            record(**_event(i))
    else:
        columns = [f.column for f in _FIELDS if f.attname != "seq"]
        sql = f"INSERT INTO {PLAIN} (seq, {', '.join(columns)}) VALUES (nextval('{PLAIN}_seq'), {', '.join(['%s'] * len(columns))})"
        with connection.cursor() as cursor:
            for i in range(count):
                _plain_insert(cursor, sql, i)
    connections["default"].close()


def _run(pool, db_name: str, side: str, per: int, threads: int) -> float:
    start = time.perf_counter()
    pool.map(_writer, [(db_name, side, per, threads)] * WRITERS)
    return time.perf_counter() - start


def bench_writes(db_name: str, total: int, rounds: int, threads: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {PLAIN} (LIKE audit_auditevent INCLUDING ALL)")
        cursor.execute(f"CREATE SEQUENCE {PLAIN}_seq")
    per = total // WRITERS
    seconds = {"plain": 0.0, "chain": 0.0}
    connections["default"].close()
    with multiprocessing.get_context("fork").Pool(WRITERS) as pool:
        for _ in range(rounds):
            for side in ("plain", "chain"):
                seconds[side] += _run(pool, db_name, side, per, threads)
    events = per * WRITERS * rounds
    rate = {side: events / spent for side, spent in seconds.items()}
    result = verify_chain()
    print(f"writes from {WRITERS} processes x {threads} thread(s), {rounds} alternating rounds of {per * WRITERS} events a side:")
    print(f"  plain inserts  {rate['plain']:,.0f} rows/s")
    print(f"  chain appends  {rate['chain']:,.0f} events/s   ratio {rate['chain'] / rate['plain']:.2f}x  (goal >= 0.8x)")
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
    with scratch_database() as name, override_settings(OPS_RATE_LIMITS={}):
        bench_writes(name, args.writes, args.rounds, args.threads)
        bench_browse([int(s) for s in args.sizes.split(",") if s], args.repeat)


if __name__ == "__main__":
    main()
