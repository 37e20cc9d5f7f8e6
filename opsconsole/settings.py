"""Settings: everything comes from the environment, with defaults that run on
one machine with nothing installed beforehand (SQLite + an embedded Redis
started by `bin/console`). See README "Configuration"."""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


ENVIRONMENTS = ("development", "production", "test")
ENVIRONMENT = env("OPSCONSOLE_ENV", "development").strip().lower()  # "Production" is production
if ENVIRONMENT not in ENVIRONMENTS:
    # Never fall back to development: a typo would run production without its safety checks.
    raise ImproperlyConfigured(f"OPSCONSOLE_ENV={env('OPSCONSOLE_ENV')!r} is not one of {', '.join(ENVIRONMENTS)}; refusing to start.")
PRODUCTION = ENVIRONMENT == "production"
DATA_DIR = Path(env("OPSCONSOLE_DATA_DIR", str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEV_SECRET_KEY = "insecure-development-key-do-not-use-in-production"
SECRET_KEY = env("SECRET_KEY", DEV_SECRET_KEY)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

if PRODUCTION:
    problems = []
    if DEBUG:
        problems.append("DEBUG is on")
    if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 32:
        problems.append("SECRET_KEY is the development default or shorter than 32 characters")
    if not ALLOWED_HOSTS:
        problems.append("ALLOWED_HOSTS is empty")
    if "*" in ALLOWED_HOSTS:
        problems.append("ALLOWED_HOSTS accepts any host ('*'): list the console's host names")
    if problems:
        raise ImproperlyConfigured("Refusing to start in production: " + "; ".join(problems))

INSTALLED_APPS = [
    "apps.core.apps.ReadOnlyAdminConfig",  # django.contrib.admin, read-only
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "channels",
    "apps.core",
    "apps.accounts",
    "apps.audit",
    "apps.approvals",
    "apps.monitoring",
    "apps.security",
    "apps.infrastructure",
    "apps.storage",
    "apps.comms",
    "apps.mcp",
    "apps.console",
    "oauth2_provider",  # django-oauth-toolkit: the authorization server of MCP clients (docs/oauth.md)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.RequestIdMiddleware",
    "apps.core.middleware.UnavailableMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "opsconsole.urls"
WSGI_APPLICATION = "opsconsole.wsgi.application"
ASGI_APPLICATION = "opsconsole.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.console.context_processors.console",
            ],
        },
    },
]

# --- database -----------------------------------------------------------------
# Web processes (asgi.py sets it): once the database failed to answer a connect, every access
# in the next few seconds fails at once, so a page answers 503 in one timeout, not one per query.
DB_DOWN_SECONDS = float(env("DB_DOWN_SECONDS", "0"))
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{DATA_DIR / 'opsconsole.sqlite3'}"),
        conn_max_age=int(env("DB_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, beat) share the file: WAL lets readers run
    # beside the writer; IMMEDIATE avoids lock-upgrade deadlocks between writers.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-opsconsole.sqlite3")}
elif DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql"):
    # A database that does not answer must not hold a process for long: connect timeout, and a
    # statement timeout for web processes (asgi.py sets DB_STATEMENT_TIMEOUT_MS; workers run long jobs).
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options["connect_timeout"] = int(env("DB_CONNECT_TIMEOUT", "5"))
    if DB_DOWN_SECONDS:  # after a failed connect, fail at once for this long (opsconsole/postgresql)
        DATABASES["default"]["ENGINE"] = "opsconsole.postgresql"
    if int(env("DB_STATEMENT_TIMEOUT_MS", "0")):
        options["options"] = f"-c statement_timeout={int(env('DB_STATEMENT_TIMEOUT_MS'))}"
    if env_bool("DB_POOL", False):
        # Web processes (asgi.py sets DB_POOL=1): under ASGI every request's sync code runs on a fresh thread, so
        # per-thread persistent connections (CONN_MAX_AGE) would reconnect per request; a pool keeps them.
        # Not for Celery's prefork children: a pool's threads do not survive fork.
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        options["pool"] = {
            "min_size": 1,
            "max_size": int(env("DB_POOL_MAX", "16")),
            "timeout": float(env("DB_POOL_TIMEOUT", "10")),
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- redis: cache, rate limits, Celery broker, channel layer ------------------------
# Default: the embedded Redis that bin/console starts on a unix socket in DATA_DIR.
REDIS_URL = env("REDIS_URL", f"unix://{DATA_DIR / 'redis.sock'}")
REDIS_PREFIX = env("REDIS_PREFIX", "opsconsole")


def _celery_broker_url(url: str) -> str:
    if url.startswith("unix://"):
        return "redis+socket://" + url.removeprefix("unix://")
    return url


# Short timeouts on every Redis client (redis-py's default is 5 s): a Redis that hangs
# must make a page fail fast with a clear message, not hold it (see docs/faults.md).
REDIS_SOCKET_TIMEOUT = float(env("REDIS_SOCKET_TIMEOUT", "2"))
REDIS_CONNECT_TIMEOUT = float(env("REDIS_CONNECT_TIMEOUT", "1"))
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_PREFIX,
        "OPTIONS": {
            "socket_timeout": REDIS_SOCKET_TIMEOUT,
            "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
            # A pooled connection broken by a Redis restart is replaced at once (one retry, never on a timeout).
            "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        },
    }
}
CHANNEL_LAYERS = {
    "default": {
        # channels_redis, with its socket timeout kept longer than its blocking read (apps/core/channel_layer.py).
        "BACKEND": "apps.core.channel_layer.RedisChannelLayer",
        "CONFIG": {
            "hosts": [REDIS_URL],
            "prefix": f"{REDIS_PREFIX}:asgi",
            "capacity": 1000,
            "expiry": 30,
            "block_seconds": float(env("CHANNEL_LAYER_BLOCK_SECONDS", "2")),
            "socket_timeout": REDIS_SOCKET_TIMEOUT,
            "connect_timeout": REDIS_CONNECT_TIMEOUT,
        },
    }
}
CELERY_BROKER_URL = _celery_broker_url(REDIS_URL)
# A task is acknowledged only when it ends (acks late); a worker that dies mid-task gives it back
# (reject on worker lost), and an unacknowledged task is redelivered after the visibility timeout.
# Redelivery never runs a job twice: run_job checks the job's lease (docs/jobs.md).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "global_keyprefix": f"{REDIS_PREFIX}:",
    "visibility_timeout": int(env("CELERY_VISIBILITY_TIMEOUT", "3600")),
    "socket_timeout": REDIS_SOCKET_TIMEOUT,
    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
}
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_CONNECT_TIMEOUT
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", "opsconsole")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "approvals-expire": {
        "task": "apps.approvals.tasks.expire_requests",
        "schedule": timedelta(seconds=60),
    },
}
# Job leases: a running job heartbeats every JOB_HEARTBEAT_SECONDS; one silent for JOB_LEASE_SECONDS
# has lost its worker and is resumed or failed by the reaper, which runs every JOB_REAP_SECONDS.
JOB_LEASE_SECONDS = min(60, int(env("JOB_LEASE_SECONDS", "30")))
JOB_HEARTBEAT_SECONDS = float(env("JOB_HEARTBEAT_SECONDS", str(JOB_LEASE_SECONDS / 3)))
JOB_REAP_SECONDS = int(env("JOB_REAP_SECONDS", "10"))
JOB_MAX_ATTEMPTS = int(env("JOB_MAX_ATTEMPTS", "3"))
CELERY_BEAT_SCHEDULE["core-reap-jobs"] = {"task": "apps.core.tasks.reap_jobs", "schedule": timedelta(seconds=JOB_REAP_SECONDS)}

# --- auth, sessions, security headers --------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "console:home"
LOGOUT_REDIRECT_URL = "accounts:login"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = int(env("SESSION_COOKIE_AGE", str(8 * 3600)))
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Preloading is hard to undo, so it is a deliberate opt-in rather than a deploy-check failure.
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

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

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

# --- static -----------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}

# --- the console ------------------------------------------------------------------
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
AUDIT_CHECKPOINT_PATH = env("AUDIT_CHECKPOINT_PATH", str(DATA_DIR / "audit-checkpoints.jsonl"))
# "<connection>/<bucket>/<prefix>": also copy each checkpoint there (a storage connection); empty = off.
AUDIT_CHECKPOINT_BUCKET = env("AUDIT_CHECKPOINT_BUCKET", "")
# Anchors (signed chain heads, see docs/audit.md): every AUDIT_ANCHOR_SECONDS by beat, and at clean shutdown.
AUDIT_ANCHOR_SECONDS = int(env("AUDIT_ANCHOR_SECONDS", "10"))
CELERY_BEAT_SCHEDULE["audit-anchor"] = {"task": "apps.audit.tasks.anchor", "schedule": timedelta(seconds=AUDIT_ANCHOR_SECONDS)}
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
CELERY_BEAT_SCHEDULE["audit-stream"] = {"task": "apps.audit.tasks.stream", "schedule": timedelta(seconds=AUDIT_STREAM_SECONDS)}
# Key for values stored encrypted (connector credentials, service secrets).
# Defaults to one derived from SECRET_KEY; set FIELD_ENCRYPTION_KEY to rotate separately.
FIELD_ENCRYPTION_KEY = env("FIELD_ENCRYPTION_KEY")
# Behind a trusted proxy, the META key holding the client address (e.g. HTTP_X_FORWARDED_FOR).
CLIENT_IP_HEADER = env("CLIENT_IP_HEADER")
CONSOLE_BASE_URL = env("CONSOLE_BASE_URL", "http://127.0.0.1:8000")
# The outbound guard (apps/core/outbound.py) never calls link-local or metadata addresses, and calls
# loopback, private and other internal addresses only when the connector's allow-list (CIDRs) names
# them. Prometheus sources, S3 endpoints and Docker engines usually live inside: by default they may
# use loopback and private networks. Comms targets are public SaaS: COMMS_SSRF_ALLOW (below) is empty.
INTERNAL_NETWORKS = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
MONITORING_OUTBOUND_ALLOW = env_list("MONITORING_OUTBOUND_ALLOW", INTERNAL_NETWORKS)
STORAGE_OUTBOUND_ALLOW = env_list("STORAGE_OUTBOUND_ALLOW", INTERNAL_NETWORKS)
INFRA_OUTBOUND_ALLOW = env_list("INFRA_OUTBOUND_ALLOW", INTERNAL_NETWORKS)
# SIEM sinks of the audit stream (docs/audit.md) are usually inside too.
AUDIT_SINK_OUTBOUND_ALLOW = env_list("AUDIT_SINK_OUTBOUND_ALLOW", INTERNAL_NETWORKS)

# --- monitoring -------------------------------------------------------------------
# The console's own metrics: every process (web, worker, beat) writes its samples to
# files in one directory and /metrics adds them up (prometheus-client's multiprocess
# mode). prometheus-client reads this variable when it is first imported, so it is set
# here, before any app loads; `bin/console` empties the directory at start.
METRICS_DIR = Path(env("PROMETHEUS_MULTIPROC_DIR", str(DATA_DIR / "metrics")))
METRICS_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)
# Who may read /metrics: a bearer token, or a client address in these networks.
METRICS_TOKEN = env("METRICS_TOKEN")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
MIDDLEWARE.insert(0, "apps.monitoring.metrics.RequestMetricsMiddleware")
# The demo source "default" (bin/console starts a Prometheus and an Alertmanager on
# these ports when their binaries exist and MONITORING_LOCAL_PEERS is on).
MONITORING_PROMETHEUS_URL = env("MONITORING_PROMETHEUS_URL", "http://127.0.0.1:9090")
MONITORING_ALERTMANAGER_URL = env("MONITORING_ALERTMANAGER_URL", "http://127.0.0.1:9093")
MONITORING_LOCAL_PEERS = env_bool("MONITORING_LOCAL_PEERS", True)
MONITORING_MAX_QUERY_CHARS = int(env("MONITORING_MAX_QUERY_CHARS", "4000"))
MONITORING_MAX_RANGE_DAYS = int(env("MONITORING_MAX_RANGE_DAYS", "31"))
MONITORING_DASHBOARD_POINTS = int(env("MONITORING_DASHBOARD_POINTS", "240"))

# --- security ---------------------------------------------------------------------
# Uploaded files and archives for scanning, and the limits that keep them safe to unpack.
SECURITY_UPLOAD_DIR = env("SECURITY_UPLOAD_DIR", str(DATA_DIR / "security-uploads"))
SECURITY_UPLOAD_MAX_MB = int(env("SECURITY_UPLOAD_MAX_MB", "200"))
SECURITY_UNPACK_MAX_MB = int(env("SECURITY_UNPACK_MAX_MB", "1024"))  # total uncompressed size of an archive
SECURITY_UNPACK_MAX_FILES = int(env("SECURITY_UNPACK_MAX_FILES", "100000"))
# Files above this size are skipped by the secret scanner (generated or data files).
SECURITY_MAX_FILE_MB = int(env("SECURITY_MAX_FILE_MB", "5"))
# Key of the HMAC that fingerprints secrets; defaults to one derived from SECRET_KEY.
# Baseline files hold these fingerprints: changing the key invalidates them.
SECURITY_FINGERPRINT_KEY = env("SECURITY_FINGERPRINT_KEY")
# Paths (globs) and secret values (regexes) never reported, for every scan.
SECURITY_ALLOW_PATHS = env_list("SECURITY_ALLOW_PATHS")
SECURITY_EXPORT_MAX = int(env("SECURITY_EXPORT_MAX", "10000"))  # findings in one SARIF/CSV export
SECURITY_ALLOW_PATTERNS = [p for p in env("SECURITY_ALLOW_PATTERNS").split("\n") if p.strip()]
# Bucket scans: objects listed per request, and the most objects one scan reads (narrow the prefix beyond).
SECURITY_BUCKET_PAGE_SIZE = int(env("SECURITY_BUCKET_PAGE_SIZE", "1000"))
SECURITY_BUCKET_MAX_OBJECTS = int(env("SECURITY_BUCKET_MAX_OBJECTS", "100000"))
# Advisories: a snapshot ships with the console; a scheduled sync replaces each ecosystem's set with
# OSV's export <base>/<ecosystem>/all.zip (conditional GET). 0 hours = no scheduled sync.
SECURITY_OSV_BASE_URL = env("SECURITY_OSV_BASE_URL", "https://osv-vulnerabilities.storage.googleapis.com").rstrip("/")
SECURITY_OSV_ECOSYSTEMS = env_list("SECURITY_OSV_ECOSYSTEMS", "PyPI,npm")
SECURITY_OSV_SYNC_HOURS = float(env("SECURITY_OSV_SYNC_HOURS", "24"))
SECURITY_OSV_MAX_MB = int(env("SECURITY_OSV_MAX_MB", "1024"))  # the largest export accepted
SECURITY_ADVISORY_STALE_DAYS = int(env("SECURITY_ADVISORY_STALE_DAYS", "7"))  # older data: a warning on /health/
# A scan's gate fails on an open finding of these severities (a secret verified live is critical).
SECURITY_GATE_SEVERITIES = env_list("SECURITY_GATE_SEVERITIES", "critical")
# Live-secret verification (security.verify_secret): off unless families are listed (github, slack, aws).
SECURITY_VERIFY_FAMILIES = env_list("SECURITY_VERIFY_FAMILIES")
SECURITY_VERIFY_GITHUB_URL = env("SECURITY_VERIFY_GITHUB_URL", "https://api.github.com")
SECURITY_VERIFY_SLACK_URL = env("SECURITY_VERIFY_SLACK_URL", "https://slack.com/api")
SECURITY_VERIFY_AWS_STS_URL = env("SECURITY_VERIFY_AWS_STS_URL", "https://sts.amazonaws.com")
SECURITY_VERIFY_RATE = env("SECURITY_VERIFY_RATE", "10/m")  # verification calls per family (django-ratelimit syntax)
SECURITY_VERIFY_TIMEOUT = float(env("SECURITY_VERIFY_TIMEOUT", "10"))
if SECURITY_OSV_SYNC_HOURS > 0:
    CELERY_BEAT_SCHEDULE["security-sync-advisories"] = {
        "task": "apps.security.tasks.sync_advisories",
        "schedule": timedelta(hours=SECURITY_OSV_SYNC_HOURS),
    }

# --- infrastructure ---------------------------------------------------------------
# Image build contexts: directories under this root, or uploaded tarballs kept here until built.
INFRA_BUILD_ROOT = Path(env("INFRA_BUILD_ROOT", str(DATA_DIR / "build-contexts")))
INFRA_UPLOAD_DIR = Path(env("INFRA_UPLOAD_DIR", str(DATA_DIR / "build-uploads")))
INFRA_UPLOAD_MAX_BYTES = int(env("INFRA_UPLOAD_MAX_BYTES", str(200 * 1024 * 1024)))
INFRA_FOLLOW_LOGS_MAX_SECONDS = int(env("INFRA_FOLLOW_LOGS_MAX_SECONDS", "600"))
# The local engine bin/console starts (podman) and the demo environment uses, when none is given.
INFRA_DEMO_ENGINE_URL = env("INFRA_DEMO_ENGINE_URL", "")
# Prefix of the demo's environment names: tests seed the demo beside other runs on one engine.
INFRA_DEMO_PREFIX = env("INFRA_DEMO_PREFIX", "")

# --- storage ----------------------------------------------------------------------
# Uploads stream to S3 multipart: a part is STORAGE_PART_SIZE bytes (S3's floor is
# 5 MiB) and one upload holds at most STORAGE_UPLOAD_CONCURRENCY + 1 parts in memory.
STORAGE_PART_SIZE = max(5 * 1024 * 1024, int(env("STORAGE_PART_SIZE", str(5 * 1024 * 1024))))
STORAGE_UPLOAD_CONCURRENCY = max(1, int(env("STORAGE_UPLOAD_CONCURRENCY", "4")))
# What an upload (streamed or direct) may be: at most this many bytes (S3's own limit is 5 TiB), and a
# content type matching one of these patterns (e.g. "image/*,text/csv"; empty = any).
STORAGE_UPLOAD_MAX_BYTES = int(env("STORAGE_UPLOAD_MAX_BYTES", str(5 * 1024**4)))
STORAGE_UPLOAD_CONTENT_TYPES = env_list("STORAGE_UPLOAD_CONTENT_TYPES")
# A browser upload that sends nothing for this long is aborted.
STORAGE_UPLOAD_IDLE_SECONDS = float(env("STORAGE_UPLOAD_IDLE_SECONDS", "120"))
# Port of the demo's in-memory S3 (moto) that bin/console starts when moto is installed.
STORAGE_DEMO_S3_PORT = int(env("STORAGE_DEMO_S3_PORT", "8010"))
STORAGE_PRESIGN_MAX_SECONDS = int(env("STORAGE_PRESIGN_MAX_SECONDS", "3600"))
STORAGE_CONNECT_TIMEOUT = float(env("STORAGE_CONNECT_TIMEOUT", "5"))
STORAGE_READ_TIMEOUT = float(env("STORAGE_READ_TIMEOUT", "60"))
# Multipart uploads the console could not abort (endpoint down) or that outlived this are aborted.
STORAGE_STALE_UPLOAD_HOURS = int(env("STORAGE_STALE_UPLOAD_HOURS", "24"))
# JSON {"STORAGE_CLASS": USD per GiB-month} for storage.analyze; empty = AWS us-east-1 list prices.
STORAGE_PRICE_TABLE = env("STORAGE_PRICE_TABLE")
CELERY_BEAT_SCHEDULE["storage-abort-stale-uploads"] = {
    "task": "apps.storage.tasks.abort_stale_uploads",
    "schedule": timedelta(minutes=int(env("STORAGE_CLEANUP_MINUTES", "15"))),
}

# --- comms ------------------------------------------------------------------------
# Connectors may also be configured (with encrypted credentials) on the Comms setup page;
# these environment values are the fallbacks for connectors that store no secret.
COMMS_SLACK_TOKEN = env("COMMS_SLACK_TOKEN")
COMMS_SLACK_BASE_URL = env("COMMS_SLACK_BASE_URL", "https://slack.com/api/")
COMMS_TEAMS_WEBHOOK_URL = env("COMMS_TEAMS_WEBHOOK_URL")
COMMS_WEBHOOK_SECRET = env("COMMS_WEBHOOK_SECRET")
COMMS_TWILIO_ACCOUNT_SID = env("COMMS_TWILIO_ACCOUNT_SID")
COMMS_TWILIO_AUTH_TOKEN = env("COMMS_TWILIO_AUTH_TOKEN")
COMMS_TWILIO_BASE_URL = env("COMMS_TWILIO_BASE_URL", "https://api.twilio.com")
COMMS_SMS_FROM = env("COMMS_SMS_FROM")
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = int(env("EMAIL_PORT", "25"))
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = int(env("EMAIL_TIMEOUT", "10"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "opsconsole@localhost")
# Bearer token Alertmanager sends to /comms/alertmanager/ (empty: the receiver is closed).
COMMS_ALERTMANAGER_TOKEN = env("COMMS_ALERTMANAGER_TOKEN")
# Outbound HTTP targets resolving to loopback/private/link-local ranges are refused unless
# listed here (CIDRs) or allow-listed by an admin on the setup page.
COMMS_SSRF_ALLOW = env_list("COMMS_SSRF_ALLOW")
COMMS_HTTP_TIMEOUT = float(env("COMMS_HTTP_TIMEOUT", "10"))
COMMS_DEDUP_WINDOW_MINUTES = int(env("COMMS_DEDUP_WINDOW_MINUTES", "30"))
COMMS_MAX_ATTEMPTS = int(env("COMMS_MAX_ATTEMPTS", "5"))
# A rate limit asking to wait up to this long is waited out in the same attempt; longer waits reschedule.
COMMS_MAX_INLINE_WAIT_SECONDS = float(env("COMMS_MAX_INLINE_WAIT_SECONDS", "5"))
COMMS_TICK_SECONDS = int(env("COMMS_TICK_SECONDS", "15"))
# httpx logs every request's full URL at INFO, and webhook URLs (Teams) embed their key.
LOGGING["loggers"]["httpx"] = {"level": "WARNING"}
CELERY_BEAT_SCHEDULE["comms-tick"] = {"task": "apps.comms.tasks.tick", "schedule": timedelta(seconds=COMMS_TICK_SECONDS)}

# --- mcp --------------------------------------------------------------------------
# The endpoint is /mcp. DNS-rebinding protection: the Host and Origin headers a request
# may carry ("host:*" / "scheme://host:*" allow any port). Defaults follow ALLOWED_HOSTS.
MCP_ALLOWED_HOSTS = env_list("MCP_ALLOWED_HOSTS") or [h for host in ALLOWED_HOSTS for h in (host, f"{host}:*")]
MCP_ALLOWED_ORIGINS = env_list("MCP_ALLOWED_ORIGINS") or [
    *CSRF_TRUSTED_ORIGINS,
    CONSOLE_BASE_URL.rstrip("/"),
    *([] if PRODUCTION else ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]),
]
# OAuth 2.1 for MCP clients (docs/oauth.md): the console is its own authorization server (django-oauth-toolkit)
# and /mcp the one protected resource its access tokens are bound to (RFC 8707).
MCP_RESOURCE_URL = CONSOLE_BASE_URL.rstrip("/") + "/mcp"
# Dynamic client registration is open (MCP clients register themselves): at most this many per address.
OAUTH_REGISTRATION_RATE_LIMIT = env("OAUTH_REGISTRATION_RATE_LIMIT", "10/h")
# Both log requests, codes and tokens at DEBUG: never below WARNING here, whatever the root level.
LOGGING["loggers"]["oauthlib"] = {"level": "WARNING"}
LOGGING["loggers"]["oauth2_provider"] = {"level": "WARNING"}
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
# A tools/call of a long operation waits this long for its job (relaying progress), then
# returns the job's id and link while the job goes on.
MCP_JOB_WAIT_SECONDS = int(env("MCP_JOB_WAIT_SECONDS", "300"))
# Threads per web process that run MCP calls' database work (each keeps one DB connection, so
# keep it below DB_POOL_MAX: the pages of the same process need connections too).
MCP_THREADS = int(env("MCP_THREADS", "8"))
