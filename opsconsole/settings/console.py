"""The console's gateway (apps/core): rate limits, how long an actor is trusted, health probes,
breakers, approvals, encrypted values, the client's address, and the outbound guard's allow-lists."""

from .environment import env, env_list

# Rate limit per actor (user, or token for API/MCP calls) per risk class.
OPS_RATE_LIMITS = {
    "read": env("OPS_RATE_LIMIT_READ", "100/m"),
    "write": env("OPS_RATE_LIMIT_WRITE", "100/m"),
    "risky": env("OPS_RATE_LIMIT_RISKY", "100/m"),
}
RATELIMIT_USE_CACHE = "default"
# How long a process trusts what it read of a user's roles or an API token: a revocation, role
# change or deactivation takes effect everywhere within this bound (at once in the process that made it).
ACTOR_CACHE_SECONDS = float(env("ACTOR_CACHE_SECONDS", "1"))
LOGIN_RATE_LIMIT = env("LOGIN_RATE_LIMIT", "10/m")
# /health/ and /healthz wait this long for their probes; a dependency that has not answered is reported down.
HEALTH_PROBE_SECONDS = float(env("HEALTH_PROBE_SECONDS", "1.5"))
BREAKER_FAIL_MAX = int(env("BREAKER_FAIL_MAX", "5"))
BREAKER_RESET_SECONDS = int(env("BREAKER_RESET_SECONDS", "30"))
APPROVAL_DEFAULT_EXPIRY_HOURS = int(env("APPROVAL_DEFAULT_EXPIRY_HOURS", "24"))
# Key for values stored encrypted (connector credentials, service secrets).
# Defaults to one derived from SECRET_KEY; set FIELD_ENCRYPTION_KEY to rotate separately.
FIELD_ENCRYPTION_KEY = env("FIELD_ENCRYPTION_KEY")
# Behind a trusted proxy, the META key holding the client address (e.g. HTTP_X_FORWARDED_FOR)...
CLIENT_IP_HEADER = env("CLIENT_IP_HEADER")
# ...and how many proxies in front of the console each append the address they were called from: the client's is
# that many from the right end of the header; what stands left of it, the client may have written itself.
CLIENT_IP_PROXIES = int(env("CLIENT_IP_PROXIES", "1"))
# The views' per-address rate limits (login, OAuth endpoints) count that address too, not the proxy's.
RATELIMIT_IP_META_KEY = "apps.core.middleware.rate_limit_address"
CONSOLE_BASE_URL = env("CONSOLE_BASE_URL", "http://127.0.0.1:8000")
# The outbound guard (apps/core/outbound.py) never calls link-local or metadata addresses, and calls
# loopback, private and other internal addresses only when the connector's allow-list (CIDRs) names
# them. Prometheus sources, S3 endpoints and Docker engines usually live inside: by default they may
# use loopback and private networks. Comms targets are public SaaS: COMMS_SSRF_ALLOW (comms.py) is empty.
INTERNAL_NETWORKS = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
MONITORING_OUTBOUND_ALLOW = env_list("MONITORING_OUTBOUND_ALLOW", INTERNAL_NETWORKS)
STORAGE_OUTBOUND_ALLOW = env_list("STORAGE_OUTBOUND_ALLOW", INTERNAL_NETWORKS)
INFRA_OUTBOUND_ALLOW = env_list("INFRA_OUTBOUND_ALLOW", INTERNAL_NETWORKS)
# SIEM sinks of the audit stream (docs/audit.md) are usually inside too.
AUDIT_SINK_OUTBOUND_ALLOW = env_list("AUDIT_SINK_OUTBOUND_ALLOW", INTERNAL_NETWORKS)
