"""Django and its add-ons: installed apps, middleware, templates, static files, time zone, logging."""

from .environment import BASE_DIR, DATA_DIR, env

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

# The last (innermost) one is sync-only: under ASGI Django then runs the whole chain in the request's
# thread, leaving the event loop once. Stacked under a sync-only one, every async-capable middleware
# would run in the event loop and send each of its hooks to that thread and back (~2 ms CPU a page).
# tests/core/test_middleware_chain.py keeps it so.
MIDDLEWARE = [
    "apps.monitoring.metrics.RequestMetricsMiddleware",  # first: it times every request, even one a later middleware answers
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.RequestIdMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "apps.core.middleware.UnavailableMiddleware",  # sync-only, innermost: see above
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
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        # httpx logs every request's full URL at INFO, and webhook URLs (Teams) embed their key.
        "httpx": {"level": "WARNING"},
        # Both log requests, authorization codes and tokens at DEBUG (OAuth for agents, docs/oauth.md).
        "oauthlib": {"level": "WARNING"},
        "oauth2_provider": {"level": "WARNING"},
    },
}
