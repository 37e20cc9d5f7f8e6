"""Signing in: password rules, the sign-in pages, and single sign-on (OpenID Connect, docs/sso.md)."""

from django.core.exceptions import ImproperlyConfigured

from .environment import env, env_bool

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "console:home"
LOGOUT_REDIRECT_URL = "accounts:login"

# --- single sign-on (OpenID Connect): off unless OIDC_ISSUER is set; docs/sso.md -----
OIDC_ISSUER = env("OIDC_ISSUER").rstrip("/")
SSO_ENABLED = bool(OIDC_ISSUER)
OIDC_RP_CLIENT_ID = env("OIDC_CLIENT_ID")
OIDC_RP_CLIENT_SECRET = env("OIDC_CLIENT_SECRET")
OIDC_RP_SCOPES = env("OIDC_SCOPES", "openid email profile")
OIDC_RP_SIGN_ALGO = env("OIDC_SIGN_ALGO", "RS256")
OIDC_GROUPS_CLAIM = env("OIDC_GROUPS_CLAIM", "groups")
OIDC_ROLE_MAP = env("OIDC_ROLE_MAP")  # "idp-group=role,...", checked against the roles at start-up
OIDC_ONLY = SSO_ENABLED and env_bool("OIDC_ONLY", False)  # password sign-in only for a local (break-glass) admin
OIDC_USE_PKCE = True
OIDC_PKCE_CODE_CHALLENGE_METHOD = "S256"
OIDC_USE_NONCE = True
OIDC_STORE_ID_TOKEN = True  # the id_token_hint of the provider's logout
OIDC_TIMEOUT = float(env("OIDC_TIMEOUT", "10"))
OIDC_AUTHENTICATION_CALLBACK_URL = "accounts:sso_callback"
if SSO_ENABLED:
    if not (OIDC_RP_CLIENT_ID and OIDC_RP_CLIENT_SECRET):
        raise ImproperlyConfigured("OIDC_ISSUER is set: OIDC_CLIENT_ID and OIDC_CLIENT_SECRET are needed too.")
    AUTHENTICATION_BACKENDS = ["apps.accounts.sso.LocalPasswordBackend", "apps.accounts.sso.SsoBackend"]
