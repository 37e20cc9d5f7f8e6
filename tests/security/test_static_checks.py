"""Static checks: bandit as a library and the Django deployment checks, each
finding with its OWASP Top 10 category; safe code stays quiet."""

from apps.security import owasp
from apps.security.models import Finding

SETTINGS = """
import os
DEBUG = True
ALLOWED_HOSTS = ["*"]
SECRET_KEY = "django-insecure-k3y-for-dev-only"
SESSION_COOKIE_SECURE = False
INSTALLED_APPS = ["django.contrib.admin"]
ROOT_URLCONF = "site.urls"
"""
PROD_SETTINGS = """
import os
DEBUG = os.environ.get("DEBUG") == "1"
ALLOWED_HOSTS = os.environ["ALLOWED_HOSTS"].split(",")
SECRET_KEY = os.environ["SECRET_KEY"]
SESSION_COOKIE_SECURE = True
INSTALLED_APPS = ["django.contrib.admin"]
"""
VIEWS = """
import hashlib
import pickle
import subprocess

from django.db import connection
from django.views.decorators.csrf import csrf_exempt

from .models import User


@csrf_exempt
def hook(request):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM orders WHERE id = {request.GET['id']}")
    users = User.objects.raw("SELECT * FROM auth_user WHERE username = '%s'" % request.GET["u"])
    subprocess.run(request.GET["cmd"], shell=True)
    state = pickle.loads(request.body)
    return hashlib.md5(request.body).hexdigest(), users, state


def safe(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM orders WHERE id = %s", [request.GET["id"]])
    return User.objects.filter(username=request.GET["u"])
"""


def test_scan_source_reports_django_and_bandit_findings(scan_root, make_user, run_scan):
    root, _ = scan_root({"site/settings.py": SETTINGS, "site/prod_settings.py": PROD_SETTINGS, "site/views.py": VIEWS})
    job, scan = run_scan(make_user("operator"), "security.scan_source", {"root": root.name, "path": "site"})
    assert job.status == "succeeded", job.error
    found = {(f.path, f.rule, f.owasp) for f in Finding.objects.filter(target=scan.target)}
    expected = {
        ("settings.py", "django-debug-true", owasp.A05),
        ("settings.py", "django-allowed-hosts-wildcard", owasp.A05),
        ("settings.py", "django-hardcoded-secret-key", owasp.A07),
        ("settings.py", "django-session-cookie-secure-off", owasp.A05),
        ("views.py", "django-csrf-exempt", owasp.A01),
        ("views.py", "django-raw-sql-format", owasp.A03),
        ("views.py", "B602", owasp.A03),  # subprocess with shell=True
        ("views.py", "B301", owasp.A08),  # pickle.loads
        ("views.py", "B324", owasp.A02),  # md5
    }
    assert expected <= found, expected - found
    assert not {f for f in found if f[0] == "prod_settings.py"}
    raw_sql = Finding.objects.filter(target=scan.target, rule="django-raw-sql-format").order_by("line")
    assert [f.line for f in raw_sql] == [15, 16]  # the f-string and the % formatting, not the parametrised query
    # the Django check and bandit's B608 report the same line once
    assert not Finding.objects.filter(target=scan.target, rule="B608", line__in=[15, 16]).exists()
    assert all(f.owasp for f in Finding.objects.filter(target=scan.target))
    debug = Finding.objects.get(target=scan.target, rule="django-debug-true")
    assert (debug.severity, debug.line, debug.preview) == ("high", 3, "DEBUG = True")


def test_a_moved_line_is_the_same_finding(scan_root, make_user, run_scan):
    root, base = scan_root({"settings.py": SETTINGS})
    user = make_user("operator")
    run_scan(user, "security.scan_source", {"root": root.name})
    (base / "settings.py").write_text("# a new comment\n" + SETTINGS)
    _, second = run_scan(user, "security.scan_source", {"root": root.name})
    assert (second.stats["new"], second.stats["fixed"]) == (0, 0)
    assert Finding.objects.get(target=second.target, rule="django-debug-true").line == 4
