"""Audit log: append rate with 8 concurrent writers (chain intact afterwards),
and filtered browse latency at 10k, 1M and 10M rows (keyset pages: should stay flat).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/opsconsole REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/audit.py [--sizes 10000,1000000,10000000] [--writes 4000]
"""

import argparse
import multiprocessing
import random
import time

from harness import fmt, percentiles, scratch_database  # isort: skip

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, connections
from django.test import Client, override_settings

from apps.audit.models import AuditEvent
from apps.audit.verify import verify_chain
from apps.audit.writer import record

WRITERS = 8


def _writer(args):
    db_name, count = args
    connections["default"].settings_dict["NAME"] = db_name
    connections["default"].close()
    for i in range(count):
        record(operation="bench.write", outcome="ok", channel="system", target=f"w{i}", params={"i": i})
    connections["default"].close()


def bench_writes(db_name: str, total: int) -> None:
    per = total // WRITERS
    ctx = multiprocessing.get_context("fork")
    connections["default"].close()
    start = time.perf_counter()
    with ctx.Pool(WRITERS) as pool:
        pool.map(_writer, [(db_name, per)] * WRITERS)
    elapsed = time.perf_counter() - start
    result = verify_chain()
    print(f"writes: {per * WRITERS} events by {WRITERS} processes in {elapsed:.2f} s = {per * WRITERS / elapsed:,.0f} writes/s"
          f"  (goal >= 1,000/s); chain intact: {result.ok} ({result.checked} events)")  # fmt: skip


FILL_SQL = """
INSERT INTO audit_auditevent (seq, at, actor, token, channel, operation, app, target, params, outcome, error,
                              duration_ms, request_id, approval_id, prev_hash, hash)
SELECT s, now() - make_interval(secs => (%(top)s - s) * 0.01),
       'user' || (s %% 50), '', (ARRAY['web','mcp','worker','system'])[1 + s %% 4],
       'app' || (s %% 7) || '.op' || (s %% 13), 'app' || (s %% 7), 'target/' || (s %% 100000), '{}'::jsonb,
       CASE WHEN s %% 97 = 0 THEN 'denied' WHEN s %% 31 = 0 THEN 'failed' ELSE 'ok' END, '',
       1.5, md5(s::text), '', md5((s - 1)::text), md5(s::text)
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
    parser.add_argument("--sizes", default="10000,1000000,10000000")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("bench/audit.py measures PostgreSQL: set DATABASE_URL=postgres://...")
    with scratch_database() as name, override_settings(OPS_RATE_LIMITS={}):
        bench_writes(name, args.writes)
        bench_browse([int(s) for s in args.sizes.split(",")], args.repeat)


if __name__ == "__main__":
    main()
