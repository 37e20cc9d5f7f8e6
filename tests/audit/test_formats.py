"""The SIEM formats on events the writer really stored: OCSF classes and activities,
CEF escaping, and the RFC 5424 frame with its octet count."""

import json

from apps.audit.formats import cef, ocsf, render, syslog_frame
from apps.audit.writer import record


def event(**fields):
    return record(**{"operation": "storage.delete", "outcome": "ok", "channel": "web", "actor_name": "x", **fields})


def test_ocsf_classes_and_activities(db):
    assert (ocsf(event())["class_uid"], ocsf(event())["activity_id"], ocsf(event())["type_uid"]) == (6003, 4, 600304)
    assert ocsf(event(operation="storage.upload"))["activity_id"] == 1
    assert ocsf(event(operation="storage.list"))["activity_id"] == 2
    assert ocsf(event(operation="infrastructure.deploy"))["activity_id"] == 3
    logout = ocsf(event(operation="accounts.logout"))
    assert (logout["class_uid"], logout["category_uid"], logout["activity_id"]) == (3002, 3, 2)
    refused = ocsf(event(operation="accounts.token_refused", outcome="denied"))
    assert (refused["class_uid"], refused["status_id"], refused["severity_id"]) == (3002, 2, 3)


def test_cef_escapes_what_would_split_fields(db):
    line = cef(event(operation="a.b", target="x|y", error="bad=value\\\nnext line", params={"k": "v=1"}))
    *header, extension = line.split("|", 7)
    assert header == ["CEF:0", "opsconsole", "Ops console", "1", "a.b", "a.b", "3"]
    assert "msg=bad\\=value\\\\\\nnext line" in extension and "\n" not in line
    assert "cs1=x|y" in extension  # a pipe needs no escape in the extension, only in the header
    assert 'cs3={"k": "v\\=1"}' in extension
    assert "cs2Label" not in extension  # no correlation id here: no empty custom string


def test_syslog_frame_counts_octets(db):
    stored = event(operation="storage.delete", outcome="denied", target="ünïcode")
    message = render("ocsf", stored)
    frame = syslog_frame(stored, message)
    length, rest = frame.split(b" ", 1)
    assert int(length) == len(rest)  # octets, not characters
    assert rest.startswith(b"<108>1 ") and b" opsconsole - storage.delete [opsconsole@32473 seq=" in rest
    assert json.loads(rest.split(b"] ", 1)[1])["unmapped"]["target"] == "ünïcode"
