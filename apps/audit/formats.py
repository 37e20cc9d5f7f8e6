"""Audit events as SIEMs read them: OCSF 1.1 (API Activity 6003 for operations,
Authentication 3002 for logins and token use) or ArcSight CEF, and the RFC 5424
syslog frame around either."""

from __future__ import annotations

import json
import re
import socket
from datetime import UTC

PRODUCT = {"name": "Ops console", "vendor_name": "opsconsole", "version": "1"}
OCSF_VERSION = "1.1.0"
# Authentication activities (OCSF 3002 activity_id): 1 Logon, 2 Logoff. Everything else is API Activity.
AUTHENTICATION = {"accounts.login": 1, "accounts.logout": 2, "accounts.token_refused": 1, "accounts.token_used": 1}
STATUS = {"ok": 1, "pending": 99, "failed": 2, "denied": 2}  # OCSF status_id: 1 Success, 2 Failure, 99 Other
OCSF_SEVERITY = {"ok": 1, "pending": 1, "failed": 3, "denied": 3}  # 1 Informational, 3 Medium
CEF_SEVERITY = {"ok": 3, "pending": 3, "failed": 6, "denied": 7}
SYSLOG_FACILITY = 13  # "log audit"
SYSLOG_SEVERITY = {"ok": 6, "pending": 6, "failed": 4, "denied": 4}  # informational, warning
# OCSF API Activity activity_id by the words of an operation's name: 1 Create, 2 Read, 3 Update, 4 Delete.
_VERBS = (
    (4, ("delete", "remove", "purge", "prune", "revoke")),
    (1, ("create", "add", "upload", "issue", "request")),
    (2, ("browse", "view", "export", "list", "get", "status", "query", "health", "search", "sinks")),
)


def epoch_ms(event) -> int:
    return int(event.at.timestamp() * 1000)


def _api_activity(operation: str) -> int:
    words = set(re.split(r"[._]", operation))
    for activity, verbs in _VERBS:
        if words & set(verbs):
            return activity
    return 3


def ocsf(event) -> dict:
    """One event as an OCSF object (https://schema.ocsf.io/1.1.0/classes/api_activity, .../authentication)."""
    auth_activity = AUTHENTICATION.get(event.operation)
    class_uid, category_uid, activity = (3002, 3, auth_activity) if auth_activity else (6003, 6, _api_activity(event.operation))
    user = {"name": event.actor or "anonymous", **({"uid": str(event.actor_id)} if event.actor_id else {})}
    body = {
        "class_uid": class_uid,
        "category_uid": category_uid,
        "activity_id": activity,
        "type_uid": class_uid * 100 + activity,
        "time": epoch_ms(event),
        "severity_id": OCSF_SEVERITY.get(event.outcome, 1),
        "status_id": STATUS.get(event.outcome, 0),
        "status": event.outcome,
        "status_detail": event.error or None,
        "duration": round(event.duration_ms),
        "metadata": {
            "version": OCSF_VERSION,
            "product": PRODUCT,
            "uid": str(event.seq),
            "sequence": event.seq,
            "correlation_uid": event.correlation_id or None,
            "log_name": "audit",
        },
        "actor": {"user": user, "app_name": event.channel, **({"session": {"uid": event.token}} if event.token else {})},
        "src_endpoint": {"ip": event.client_ip} if event.client_ip else {},
        "unmapped": {
            "target": event.target,
            "params": event.params,
            "channel": event.channel,
            "approval_id": event.approval_id or None,
            "hash": event.hash,
            "prev_hash": event.prev_hash,
        },
    }
    if auth_activity:
        body["user"] = user
        body["auth_protocol"] = "API token" if "token" in event.operation or event.token else "password"
    else:
        body["api"] = {"operation": event.operation, "service": {"name": event.app}, "request": {"uid": event.request_id or None}}
        body["resources"] = [{"name": event.target}] if event.target else []
    return body


def _cef_header(value) -> str:
    return str(value).replace("\\", "\\\\").replace("|", "\\|")


def _cef_value(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return text.replace("\\", "\\\\").replace("=", "\\=").replace("\r", "\\r").replace("\n", "\\n")


def cef(event) -> str:
    """One event as a CEF:0 line (ArcSight Common Event Format; custom strings labelled)."""
    header = ["CEF:0", PRODUCT["vendor_name"], PRODUCT["name"], PRODUCT["version"], event.operation, event.operation,
              CEF_SEVERITY.get(event.outcome, 3)]  # fmt: skip
    ext = {
        "rt": epoch_ms(event),
        "externalId": event.seq,
        "act": event.operation,
        "outcome": event.outcome,
        "suser": event.actor,
        "src": event.client_ip or "",
        "msg": event.error,
    }
    custom = [("target", event.target), ("correlationId", event.correlation_id), ("params", event.params),
              ("channel", event.channel), ("approvalId", event.approval_id), ("hash", event.hash)]  # fmt: skip
    for n, (label, value) in enumerate(custom, start=1):
        if value not in ("", None, {}):
            ext[f"cs{n}Label"], ext[f"cs{n}"] = label, value
    extension = " ".join(f"{key}={_cef_value(str(v) if isinstance(v, int) else v)}" for key, v in ext.items() if v not in ("", None))
    return "|".join(_cef_header(h) for h in header) + "|" + extension


def render(sink_format: str, event) -> str:
    """The event's text in a sink's format: compact OCSF JSON or a CEF line (never a raw newline)."""
    if sink_format == "cef":
        return cef(event)
    return json.dumps(ocsf(event), separators=(",", ":"), ensure_ascii=False, default=str)


def _sd_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


_HOSTNAME = re.sub(r"[^!-~]", "", socket.gethostname())[:255] or "-"


def syslog_frame(event, message: str) -> bytes:
    """An RFC 5424 message with RFC 6587 octet-counting framing: `<length> <message>`."""
    pri = SYSLOG_FACILITY * 8 + SYSLOG_SEVERITY.get(event.outcome, 6)
    stamp = event.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    msgid = re.sub(r"[^!-~]", "_", event.operation)[:32] or "-"
    sd = f'[opsconsole@32473 seq="{event.seq}" correlation="{_sd_value(event.correlation_id)}"]'
    line = f"<{pri}>1 {stamp} {_HOSTNAME} opsconsole - {msgid} {sd} ".encode() + message.encode()
    return f"{len(line)} ".encode() + line
