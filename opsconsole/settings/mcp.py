"""The MCP endpoint (apps/mcp, docs/mcp.md)."""

from .console import CONSOLE_BASE_URL
from .environment import PRODUCTION, env, env_list
from .web_security import ALLOWED_HOSTS, CSRF_TRUSTED_ORIGINS

# The endpoint is /mcp. DNS-rebinding protection: the Host and Origin headers a request
# may carry ("host:*" / "scheme://host:*" allow any port). Defaults follow ALLOWED_HOSTS.
MCP_ALLOWED_HOSTS = env_list("MCP_ALLOWED_HOSTS") or [h for host in ALLOWED_HOSTS for h in (host, f"{host}:*")]
MCP_ALLOWED_ORIGINS = env_list("MCP_ALLOWED_ORIGINS") or [
    *CSRF_TRUSTED_ORIGINS,
    CONSOLE_BASE_URL.rstrip("/"),
    *([] if PRODUCTION else ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]),
]
# A tools/call of a long operation waits this long for its job (relaying progress), then
# returns the job's id and link while the job goes on.
MCP_JOB_WAIT_SECONDS = int(env("MCP_JOB_WAIT_SECONDS", "300"))
# Threads per web process that run MCP calls' database work (each keeps one DB connection, so
# keep it below DB_POOL_MAX: the pages of the same process need connections too).
MCP_THREADS = int(env("MCP_THREADS", "8"))
