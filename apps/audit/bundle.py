"""The signed export bundle: a zip, streamed, holding

- events.jsonl: the events oldest first, each with every linked field, its key id and its links;
- anchor.json: the newest signed anchor (when there is one);
- manifest.json: what the bundle holds (count, seq range, filters, SHA-256 of events.jsonl);
- manifest.sig: the Ed25519 signature of the manifest with the console's signing key.

The console signs only what it can vouch for: each event's link is checked with the chain key
as it is written (and, between consecutive events, the link to the one before), and the log
against the newest anchor. At the first event that fails — a row edited in the database behind
the console's back — the bundle stops there, unsigned, its manifest saying why (`refused`), and
the verifier rejects it; so does a log that no longer matches the anchor.

`python -m opsconsole_audit_verify bundle.zip --key pub.pem` checks it on any machine."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from collections.abc import Iterator

from django.db.models import QuerySet
from django.utils import timezone

from opsconsole_audit_verify.bundle import FORMAT
from opsconsole_audit_verify.chain import KeyOrder, signed_message

from . import anchors, keys
from .chain import LEGACY, row_values
from .models import AuditEvent
from .stream import head_seq
from .verify import anchor_problem, link_problem

CHUNK = 2000
log = logging.getLogger(__name__)
# Time bounds keep a contiguous seq range, so the links between the rows still check offline.
CONTIGUOUS_FILTERS = {"since", "until"}


class _Sink(io.RawIOBase):
    """Collects what zipfile writes, for the response to stream (zipfile handles a non-seekable file)."""

    def __init__(self):
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


def _oldest_first(qs: QuerySet):
    after = 0
    while True:
        rows = list(qs.filter(seq__gt=after).order_by("seq")[:CHUNK])
        yield from rows
        if len(rows) < CHUNK:
            return
        after = rows[-1].seq


def _line(event) -> bytes:
    body = {**row_values(event), "prev_hash": event.prev_hash, "hash": event.hash}
    return (json.dumps(body, sort_keys=True, ensure_ascii=False) + "\n").encode()


class _Vouch:
    """Whether the console can vouch for each event of the bundle, in seq order."""

    def __init__(self):
        self.ring, self.prev = keys.chain_ring(), None
        self.order = KeyOrder(self.ring)
        # A legacy (unkeyed) event after this one would be a downgrade of the chain.
        self.first_keyed = AuditEvent.objects.exclude(key_id=LEGACY).order_by("seq").values_list("seq", flat=True).first()

    def problem(self, event) -> str:
        prev, self.prev = self.prev, event
        if prev is not None and event.seq == prev.seq + 1:
            return link_problem(self.ring, self.order, event, prev.hash, prev.key_id)
        if event.key_id == LEGACY and self.first_keyed is not None and event.seq > self.first_keyed:
            return f"event #{event.seq} goes back to the unkeyed chain after keyed events"
        # Its predecessor is not in the bundle: its own link, over its content, must still match.
        return link_problem(self.ring, self.order, event, event.prev_hash, None)


def stream(qs: QuerySet, filters: dict) -> Iterator[bytes]:
    sink = _Sink()
    digest, count, first, last, refused = hashlib.sha256(), 0, None, None, ""
    vouch = _Vouch()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("events.jsonl", "w", force_zip64=True) as fh:
            for event in _oldest_first(qs):
                refused = vouch.problem(event)
                if refused:
                    break
                line = _line(event)
                digest.update(line)
                fh.write(line)
                count, first, last = count + 1, first or event.seq, event.seq
                if count % CHUNK == 0:
                    yield sink.drain()
        anchor = anchors.newest_anchor()
        if anchor is not None:
            zf.writestr("anchor.json", json.dumps(anchor))
            # A chain rewritten and re-linked by a holder of the chain key differs from the anchor.
            refused = refused or anchor_problem(anchor, head_seq())[0]
        manifest = {
            "format": FORMAT,
            "created": timezone.now().isoformat(),
            "filters": filters,
            "contiguous": set(filters) <= CONTIGUOUS_FILTERS,
            "count": count,
            "first_seq": first,
            "last_seq": last,
            "events_sha256": digest.hexdigest(),
            "signer": keys.public_fingerprint(),
            # The ring's key ids, oldest first: the verifier holds the chain's keys to this order.
            "chain_key_ids": list(vouch.ring),
        }
        if refused:
            log.error("audit export not signed: %s", refused)
            manifest["refused"] = f"{refused}; the log was altered in the database (manage.py audit_verify)"
        zf.writestr("manifest.json", json.dumps(manifest, sort_keys=True, indent=1))
        if not refused:
            zf.writestr("manifest.sig", keys.sign(signed_message(manifest)))
    yield sink.drain()
