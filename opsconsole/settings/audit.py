"""The audit chain (apps/audit, docs/audit.md): checkpoints, anchors, keys, retention, the
appender process and SIEM streaming."""

from .environment import DATA_DIR, env

AUDIT_CHECKPOINT_PATH = env("AUDIT_CHECKPOINT_PATH", str(DATA_DIR / "audit-checkpoints.jsonl"))
# "<connection>/<bucket>/<prefix>": also copy each checkpoint there (a storage connection); empty = off.
AUDIT_CHECKPOINT_BUCKET = env("AUDIT_CHECKPOINT_BUCKET", "")
# Anchors (signed chain heads, see docs/audit.md): every AUDIT_ANCHOR_SECONDS by beat, and at clean shutdown.
AUDIT_ANCHOR_SECONDS = int(env("AUDIT_ANCHOR_SECONDS", "10"))
# Also anchor (a queued task) each time the chain reaches a multiple of this many events; 0 = only by time.
AUDIT_ANCHOR_EVERY_EVENTS = int(env("AUDIT_ANCHOR_EVERY_EVENTS", "0"))
# Days an anchor object stays locked in a bucket with S3 Object Lock enabled (GOVERNANCE or COMPLIANCE mode).
AUDIT_ANCHOR_LOCK_DAYS = int(env("AUDIT_ANCHOR_LOCK_DAYS", "400"))
AUDIT_ANCHOR_LOCK_MODE = env("AUDIT_ANCHOR_LOCK_MODE", "GOVERNANCE")
# The keys, never in the database (apps/audit/keys.py): the chain's HMAC key ring and the Ed25519 signing key.
AUDIT_CHAIN_KEY = env("AUDIT_CHAIN_KEY")
AUDIT_CHAIN_KEY_FILE = env("AUDIT_CHAIN_KEY_FILE", str(DATA_DIR / "audit-chain.key"))
AUDIT_SIGNING_KEY_FILE = env("AUDIT_SIGNING_KEY_FILE", str(DATA_DIR / "audit-signing-key.pem"))
# Retention: audit.prune removes events older than this many days (0 = keep forever), behind a signed anchor.
AUDIT_RETENTION_DAYS = int(env("AUDIT_RETENTION_DAYS", "0"))
# The audit appender process (apps/audit/appender.py): writers hand it their events when this names
# its socket; one it cannot reach is skipped for AUDIT_APPENDER_RETRY_SECONDS (they append themselves).
AUDIT_APPENDER_SOCKET = env("AUDIT_APPENDER_SOCKET", "")
AUDIT_APPENDER_TIMEOUT = float(env("AUDIT_APPENDER_TIMEOUT", "10"))
AUDIT_APPENDER_RETRY_SECONDS = float(env("AUDIT_APPENDER_RETRY_SECONDS", "5"))
# SIEM streaming (docs/audit.md): beat drains every AUDIT_STREAM_SECONDS besides the kick after
# writes (at most one per AUDIT_STREAM_KICK_SECONDS per process); a batch is tried
# AUDIT_STREAM_ATTEMPTS times with exponential waits from AUDIT_STREAM_RETRY_SECONDS, then the sink
# backs off (2^failures s, at most AUDIT_STREAM_MAX_BACKOFF_SECONDS).
AUDIT_STREAM_SECONDS = float(env("AUDIT_STREAM_SECONDS", "5"))
AUDIT_STREAM_KICK_SECONDS = float(env("AUDIT_STREAM_KICK_SECONDS", "1"))
AUDIT_STREAM_BATCH = int(env("AUDIT_STREAM_BATCH", "200"))
AUDIT_STREAM_ATTEMPTS = int(env("AUDIT_STREAM_ATTEMPTS", "3"))
AUDIT_STREAM_RETRY_SECONDS = float(env("AUDIT_STREAM_RETRY_SECONDS", "0.5"))
AUDIT_STREAM_MAX_BACKOFF_SECONDS = int(env("AUDIT_STREAM_MAX_BACKOFF_SECONDS", "300"))
AUDIT_STREAM_TIMEOUT = float(env("AUDIT_STREAM_TIMEOUT", "10"))
