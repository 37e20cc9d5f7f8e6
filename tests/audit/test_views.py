"""The audit browser and export: who may see them, filters, keyset pages,
streamed export with bounded memory — and that looking is itself audited."""

import csv
import gc
import io
import json
from datetime import timedelta

import psutil
import pytest
from django.utils import timezone

from apps.audit.chain import GENESIS, row_values
from apps.audit.keys import current_chain_key
from apps.audit.models import AuditEvent
from apps.audit.writer import record
from opsconsole_audit_verify.chain import link


def bulk_events(n, start=1, **fields):
    """n chained events, inserted in bulk (the writer's one-by-one path is tested elsewhere)."""
    (key_id, key), (prev, now, batch) = current_chain_key(), (GENESIS, timezone.now(), [])
    last = AuditEvent.objects.order_by("-seq").first()
    if last:
        prev, start = last.hash, last.seq + 1
    for seq in range(start, start + n):
        e = AuditEvent(seq=seq, at=now + timedelta(microseconds=seq), actor=fields.get("actor", f"user{seq % 7}"),
                       channel="web", operation=fields.get("operation", f"app{seq % 3}.op"), app=f"app{seq % 3}",
                       target=f"target/{seq}", params={"n": seq, "note": "x" * 200}, outcome="ok", prev_hash=prev,
                       key_id=key_id)  # fmt: skip
        e.hash = link(key, prev, row_values(e))
        prev = e.hash
        batch.append(e)
        if len(batch) == 5000:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    AuditEvent.objects.bulk_create(batch)


@pytest.mark.parametrize("role,status", [("auditor", 200), ("admin", 200), ("operator", 403), ("viewer", 403), ("approver", 403)])
def test_only_auditors_and_admins_browse(client_as, role, status):
    assert client_as(role).get("/audit/").status_code == status
    assert client_as(role).get("/audit/export.csv").status_code == status


def test_filters_and_keyset_pages(client_as):
    bulk_events(200)
    client = client_as("auditor")
    first = client.get("/audit/", {"operation": "app1.op"})
    rows = first.context["events"]
    assert len(rows) == 50 and all(e.operation == "app1.op" for e in rows)
    assert [e.seq for e in rows] == sorted((e.seq for e in rows), reverse=True)
    second = client.get("/audit/", {"operation": "app1.op", "before": first.context["next_before"]})
    assert second.context["events"][0].seq < rows[-1].seq
    assert client.get("/audit/", {"target": "target/12"}).context["events"][0].target.startswith("target/12")
    assert not client.get("/audit/", {"outcome": "denied"}).context["events"]


def test_actor_and_channel_filters(client_as):
    record(operation="a.op", outcome="ok", channel="mcp", actor_name="agent-owner")
    record(operation="a.op", outcome="ok", channel="worker")
    record(operation="a.op", outcome="denied", channel="web", actor_name="someone")
    client = client_as("auditor")
    by_channel = client.get("/audit/", {"channel": "mcp", "app": "a"}).context["events"]
    assert [(e.channel, e.operation) for e in by_channel] == [("mcp", "a.op")]
    by_actor = client.get("/audit/", {"actor": "someone"}).context["events"]
    assert [(e.actor, e.outcome) for e in by_actor] == [("someone", "denied")]
    invalid = client.get("/audit/", {"channel": "nonsense"})  # an invalid filter shows nothing rather than everything
    assert invalid.status_code == 200 and not invalid.context["events"] and invalid.context["form"].errors["channel"]


def test_time_range_filter(client_as):
    record(operation="old.op", outcome="ok", channel="system")
    middle = timezone.now()
    record(operation="new.op", outcome="ok", channel="system")
    client = client_as("auditor")
    since = client.get("/audit/", {"since": middle.strftime("%Y-%m-%d %H:%M:%S.%f"), "operation": "new.op"}).context["events"]
    until = client.get("/audit/", {"until": middle.strftime("%Y-%m-%d %H:%M:%S.%f"), "app": "old"}).context["events"]
    assert [e.operation for e in since] == ["new.op"] and [e.operation for e in until] == ["old.op"]


def test_browsing_and_exporting_are_audited(client_as):
    client = client_as("auditor")
    client.get("/audit/", {"actor": "someone"})
    b"".join(client.get("/audit/export.json", {"outcome": "ok"}).streaming_content)
    browse = AuditEvent.objects.get(operation="audit.browse")
    export = AuditEvent.objects.get(operation="audit.export")
    assert browse.params == {"actor": "someone"} and browse.actor == client.user.username
    assert export.params == {"outcome": "ok", "format": "json"}


def test_event_detail(client_as):
    event = record(operation="x.y", outcome="failed", channel="mcp", error="boom", params={"a": 1})
    response = client_as("auditor").get(f"/audit/{event.seq}/")
    assert response.status_code == 200 and event.hash in response.content.decode()


def test_csv_and_json_exports_carry_the_filtered_rows(client_as):
    bulk_events(30)
    client = client_as("auditor")
    text = b"".join(client.get("/audit/export.csv", {"app": "app2"}).streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 10 and {r["app"] for r in rows} == {"app2"}
    assert json.loads(rows[0]["params"])["note"] == "x" * 200
    data = json.loads(b"".join(client.get("/audit/export.json", {"app": "app2"}).streaming_content))
    assert [r["seq"] for r in data] == [int(r["seq"]) for r in rows]


def test_export_of_100k_rows_streams_with_bounded_memory(client_as):
    bulk_events(100_000)
    client = client_as("auditor")
    response = client.get("/audit/export.csv")
    assert response.streaming
    process = psutil.Process()
    gc.collect()
    baseline = peak = process.memory_info().rss
    lines = size = 0
    for i, chunk in enumerate(response.streaming_content):
        lines += chunk.count(b"\n")
        size += len(chunk)
        if i % 500 == 0:
            peak = max(peak, process.memory_info().rss)
    assert lines == 1 + AuditEvent.objects.count() >= 100_001  # header + every row (incl. the login and export events)
    # ~45 MB of CSV went through; streaming in keyset chunks keeps the process to a few chunks' worth.
    assert size > 40_000_000
    assert peak - baseline < 30 * 1024 * 1024, f"RSS grew {(peak - baseline) / 1e6:.1f} MB while streaming {size / 1e6:.0f} MB"


def test_rows_escape_every_value_and_link_their_event_and_flow(client_as):
    record(operation="comms.send", outcome="failed", channel="mcp", target='<script>alert("t")</script>',
           error="bad <b>peer</b>", actor_name='"><img src=x>', correlation_id="approval-7&x")  # fmt: skip
    event = AuditEvent.objects.get(operation="comms.send")
    html = client_as("auditor").get("/audit/").content.decode()
    assert "<script>alert" not in html and "&lt;script&gt;alert(&quot;t&quot;)&lt;/script&gt;" in html
    assert "<b>peer</b>" not in html and "<img src=x>" not in html
    assert f'<a href="/audit/{event.seq}/">{event.seq}</a>' in html
    assert 'href="/audit/?correlation=approval-7%26x"' in html
