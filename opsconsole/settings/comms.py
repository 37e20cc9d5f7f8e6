"""Comms (apps/comms): Slack, Teams, SMS and e-mail connectors, the Alertmanager receiver, delivery."""

from .environment import env, env_bool, env_list

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
# The clock could not page an incident's next level (a target gone, a connector refused): it tries again this much later.
COMMS_ESCALATION_RETRY_MINUTES = int(env("COMMS_ESCALATION_RETRY_MINUTES", "5"))
