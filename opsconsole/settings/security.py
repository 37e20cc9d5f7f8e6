"""Security scanning (apps/security, docs/security.md): uploads and unpacking limits, the secret
scanner, advisories and live-secret verification. Django's own security settings: web_security.py."""

from .environment import DATA_DIR, env, env_list

# Uploaded files and archives for scanning, and the limits that keep them safe to unpack.
SECURITY_UPLOAD_DIR = env("SECURITY_UPLOAD_DIR", str(DATA_DIR / "security-uploads"))
SECURITY_UPLOAD_MAX_MB = int(env("SECURITY_UPLOAD_MAX_MB", "200"))
# A file the New scan page staged waits this long for its scan to claim it; the sweep removes it after.
SECURITY_UPLOAD_STAGED_MINUTES = int(env("SECURITY_UPLOAD_STAGED_MINUTES", "60"))
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
