"""Operations on the SIEM sinks the audit log streams to (registered through services.py).

Adding a sink or making one stronger is immediate; anything that could make a
SIEM miss events or read them from somewhere else (disabling, a new
destination, TLS off, other trusted CAs, another format) lowers a guard and
waits for approval, with a before → after plan.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator

from apps.core.jobs import Context
from apps.core.operations import Risk, operation

from .models import AuditSink
from .stream import forget_sinks, head_seq, lag
from .transports import SinkError, check_destination

PERMISSION = "audit.manage_audit_sinks"
# Changing one of these on an existing sink needs approval (tls only when it is turned off).
GUARDED_FIELDS = ("kind", "address", "format", "ca_pem")


class SinkInput(BaseModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,49}$", description="Sink name (lowercase letters, digits, - and _).")
    kind: Literal["syslog", "https"] = Field(description="syslog: RFC 5424 over TCP; https: JSON lines POSTed.")
    address: str = Field(max_length=300, description="https://host[:port]/path for https; host:port for syslog.")
    format: Literal["ocsf", "cef"] = Field("ocsf", description="OCSF 1.1 JSON or CEF lines.")
    tls: bool = Field(True, description="Syslog over TLS (https always uses TLS).")
    ca_pem: str = Field(
        "", max_length=20000, description="PEM certificate(s) to trust instead of the system CAs.", json_schema_extra={"widget": "textarea"}
    )
    token: SecretStr | None = Field(None, description="HTTPS bearer token. Write-only: leave empty to keep the stored one.")
    enabled: bool = Field(True, description="Stream to it.")
    backfill: bool = Field(False, description="A new sink receives the whole log from the first event (default: from now on).")

    @field_validator("address")
    @classmethod
    def _destination(cls, value: str, info: ValidationInfo) -> str:
        """The shape the kind needs, and a destination the outbound guard accepts."""
        value = value.strip()
        kind = info.data.get("kind")
        if kind == "https" and not value.startswith("https://"):
            raise ValueError("An https sink's address is an https:// URL.")
        try:
            check_destination(kind, value)
        except SinkError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("ca_pem")
    @classmethod
    def _pem(cls, value: str) -> str:
        if value.strip() and "BEGIN CERTIFICATE" not in value:
            raise ValueError("Paste PEM certificates (-----BEGIN CERTIFICATE-----).")
        return value.strip()


class SinkName(BaseModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,49}$", description="Sink name.")


class SinkInfo(BaseModel):
    name: str
    kind: str
    address: str
    format: str
    tls: bool
    has_token: bool = Field(description="A bearer token is stored (it is never shown).")
    enabled: bool
    cursor: int = Field(description="The last event seq the sink received.")
    lag_events: int
    lag_seconds: float
    failures: int
    last_error: str
    delivered_at: datetime | None


class NoInput(BaseModel):
    pass


class SinkList(BaseModel):
    sinks: list[SinkInfo]


def _info(sink: AuditSink, head: int | None = None) -> SinkInfo:
    events, seconds = lag(sink, head=head) if sink.enabled else (0, 0.0)
    return SinkInfo(
        name=sink.name, kind=sink.kind, address=sink.address, format=sink.format, tls=sink.tls, has_token=bool(sink.token),
        enabled=sink.enabled, cursor=sink.cursor, lag_events=events, lag_seconds=seconds, failures=sink.failures,
        last_error=sink.last_error, delivered_at=sink.delivered_at,
    )  # fmt: skip


def _config(sink: AuditSink | None) -> dict | None:
    if sink is None:
        return None
    return {"kind": sink.kind, "address": sink.address, "format": sink.format, "tls": sink.tls,
            "ca_pem": sink.ca_pem.strip(), "enabled": sink.enabled, "token": "set" if sink.token else "none"}  # fmt: skip


def _after(before: dict | None, params: SinkInput) -> dict:
    token = "set" if params.token else (before or {}).get("token", "none")
    if params.token and before and before["token"] == "set":
        token = "replaced"
    return {"kind": params.kind, "address": params.address, "format": params.format, "tls": params.tls,
            "ca_pem": params.ca_pem.strip(), "enabled": params.enabled, "token": token}  # fmt: skip


def _lowers_guard(before: dict | None, after: dict) -> bool:
    if before is None:
        return False  # a new sink only adds a copy of the log
    return (
        any(before[f] != after[f] for f in GUARDED_FIELDS)
        or (before["tls"] and not after["tls"])
        or (before["enabled"] and not after["enabled"])
    )


def _save_scope(params: SinkInput) -> str | None:
    before = _config(AuditSink.objects.filter(name=params.name).first())
    return f"audit-sink:{params.name}" if _lowers_guard(before, _after(before, params)) else None


def _plan_save(ctx: Context, params: SinkInput) -> dict:
    before = _config(AuditSink.objects.filter(name=params.name).first())
    return {"sink": params.name, "before": before, "after": _after(before, params)}


@operation("audit.save_sink", risk=Risk.RISKY, permission=PERMISSION, guard=True, approval_scope=_save_scope, planner=_plan_save,
           target=lambda p: f"sink {p.name}")  # fmt: skip
def save_sink(ctx: Context, params: SinkInput) -> SinkInfo:
    """Add or change a SIEM sink the audit log streams to. Adding one, or strengthening one, is immediate;
    a change that could make the SIEM miss events (another destination or format, TLS off, other CAs,
    disabling) waits for approval."""
    sink = AuditSink.objects.filter(name=params.name).first()
    if sink is None:
        sink = AuditSink(name=params.name, cursor=0 if params.backfill else head_seq())
    sink.kind, sink.address, sink.format, sink.tls = params.kind, params.address, params.format, params.tls
    sink.ca_pem, sink.enabled = params.ca_pem.strip(), params.enabled
    if params.token:
        sink.token = params.token.get_secret_value()
    # Only configuration: the cursor belongs to the delivery, which may be moving it right now.
    fields = ["kind", "address", "format", "tls", "ca_pem", "enabled", "token"]
    if sink.pk is None:
        sink.save()
    else:
        sink.save(update_fields=fields)
    forget_sinks()
    return _info(sink)


def _disable_scope(params: SinkName) -> str | None:
    return f"audit-sink:{params.name}" if AuditSink.objects.filter(name=params.name, enabled=True).exists() else None


def _plan_disable(ctx: Context, params: SinkName) -> dict:
    before = _config(AuditSink.objects.filter(name=params.name).first())
    return {"sink": params.name, "before": before, "after": before and {**before, "enabled": False}}


def _sink(name: str) -> AuditSink:
    from apps.core.errors import InvalidInput

    sink = AuditSink.objects.filter(name=name).first()
    if sink is None:
        raise InvalidInput({"name": f"There is no sink named {name!r}."})
    return sink


@operation("audit.disable_sink", risk=Risk.RISKY, permission=PERMISSION, guard=True, approval_scope=_disable_scope,
           planner=_plan_disable, target=lambda p: f"sink {p.name}")  # fmt: skip
def disable_sink(ctx: Context, params: SinkName) -> SinkInfo:
    """Stop streaming the audit log to a sink (needs approval: the SIEM stops seeing events)."""
    sink = _sink(params.name)
    sink.enabled = False
    sink.save(update_fields=["enabled"])
    return _info(sink)


@operation("audit.enable_sink", risk=Risk.WRITE, permission=PERMISSION, target=lambda p: f"sink {p.name}")
def enable_sink(ctx: Context, params: SinkName) -> SinkInfo:
    """Resume streaming to a disabled sink; it receives everything it missed, in order."""
    sink = _sink(params.name)
    sink.enabled, sink.retry_at = True, None
    sink.save(update_fields=["enabled", "retry_at"])
    forget_sinks()
    return _info(sink)


@operation("audit.sinks", risk=Risk.READ, permission="audit.view_audit_log")
def sinks(ctx: Context, params: NoInput) -> SinkList:
    """List the SIEM sinks the audit log streams to, with each one's lag (events and seconds) and last error."""
    head = head_seq()
    return SinkList(sinks=[_info(s, head) for s in AuditSink.objects.all()])
