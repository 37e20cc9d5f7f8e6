"""OAuth 2.1 for MCP clients (docs/oauth.md): the console is its own authorization server
(django-oauth-toolkit) and /mcp the one protected resource its access tokens are bound to (RFC 8707)."""

from .console import CONSOLE_BASE_URL
from .environment import env

MCP_RESOURCE_URL = CONSOLE_BASE_URL.rstrip("/") + "/mcp"
# Dynamic client registration is open (MCP clients register themselves): at most this many per address.
OAUTH_REGISTRATION_RATE_LIMIT = env("OAUTH_REGISTRATION_RATE_LIMIT", "10/h")
# The token and revocation endpoints (accounts.oauth_limits): requests per client address at each, and at the
# token endpoint per client_id too (whatever the addresses), so that codes, verifiers and refresh tokens cannot
# be guessed at speed. A refused request gets 429 slow_down with Retry-After; one audit event per key and window.
OAUTH_TOKEN_RATE_LIMIT = env("OAUTH_TOKEN_RATE_LIMIT", "30/m")
OAUTH_TOKEN_CLIENT_RATE_LIMIT = env("OAUTH_TOKEN_CLIENT_RATE_LIMIT", "60/m")
OAUTH_REVOKE_RATE_LIMIT = env("OAUTH_REVOKE_RATE_LIMIT", "30/m")
OAUTH2_PROVIDER = {
    "OIDC_ISS_ENDPOINT": CONSOLE_BASE_URL.rstrip("/"),
    "OAUTH2_PROTECTED_RESOURCE_IDENTIFIER": MCP_RESOURCE_URL,
    "OAUTH2_PROTECTED_RESOURCE_NAME": "Ops console MCP endpoint",
    # OAuth scopes are the console's roles: a token acts with (its user's roles) AND (its consented scopes).
    "SCOPES": {
        "viewer": "See dashboards, deployments, findings and incidents; run read-only operations",
        "operator": "Run read and write operations; request risky ones (they wait for approval)",
        "auditor": "Browse the audit log",
        "admin": "Manage users, roles, connectors, policies; run any operation",
    },
    "DEFAULT_SCOPES": ["viewer"],
    # What the metadata advertises; the validator (accounts.oauth_server) enforces the same.
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "refresh_token"],
    "OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["none"],
    "OAUTH2_VALIDATOR_CLASS": "apps.accounts.oauth_server.ConsoleOAuth2Validator",
    "ACCESS_TOKEN_GENERATOR": "apps.accounts.oauth_server.new_access_token",
    "REFRESH_TOKEN_GENERATOR": "apps.accounts.oauth_server.new_refresh_token",
    "ACCESS_TOKEN_EXPIRE_SECONDS": int(env("OAUTH_ACCESS_TOKEN_SECONDS", "3600")),
    "REFRESH_TOKEN_EXPIRE_SECONDS": 30 * 86400,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "PKCE_REQUIRED": True,
    "REQUEST_APPROVAL_PROMPT": "force",  # every authorization shows the consent page
    "DCR_ENABLED": True,  # advertised; served by accounts.oauth_views.register (rate-limited, public clients only)
    # RFC 9700 (security BCP): no implicit, no password grant, no "plain" PKCE, tokens stored as SHA-256 only.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
}
# Two of DOT's RFC 9700 deploy warnings, answered here rather than by its switches:
# W008 (plain http redirect URIs allowed): only to the client's own loopback, which RFC 8252 asks for
# native clients (MCP clients listen there); accounts.register_agent refuses http anywhere else.
# W005 (no RFC 9207 `iss` on the authorization response): the MCP SDK compares it against the issuer
# with a trailing slash that DOT's value lacks, and refuses every authorization; `iss` defends a client
# that talks to several authorization servers against mixing them up, and /mcp has this one only.
OAUTH_SILENCED_CHECKS = ["oauth2_provider.W005", "oauth2_provider.W008"]
