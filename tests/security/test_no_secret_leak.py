"""A secret found by any scanner never reaches the database (findings, scans,
job logs and results, audit events), the exports or the pages in full."""

import io
import re
import tarfile

from django.db import connection

from apps.core.gateway import invoke
from apps.security.models import Finding

from .conftest import git
from .samples import ALNUM, B64, Gen, cases

g = Gen("leak")


def all_database_text() -> str:
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


def test_secrets_never_stored_exported_or_rendered_in_full(scan_root, make_user, run_scan, actor_of, client, stage):
    planted = {
        "github": "ghp_" + g(ALNUM, 36),
        "aws": g(B64, 40),
        "password": g(ALNUM, 14),
        "stripe": "sk_live_" + g(ALNUM, 30),
        "image": "glpat-" + g(ALNUM, 20),
        "django": "django-insecure-" + g(ALNUM, 40),
        "bandit": g(ALNUM, 18),
    }
    files = {
        "src/settings.py": f'GITHUB = "{planted["github"]}"\naws_secret_access_key = "{planted["aws"]}"\n',
        "deploy/.env": f"DB_PASSWORD={planted['password']}\n",
        "site/settings.py": f'SECRET_KEY = "{planted["django"]}"\nINSTALLED_APPS = []\nDEBUG = True\n',
        "site/login.py": f'def login(user, password="{planted["bandit"]}"):\n    return connect(user, password="{planted["bandit"]}")\n',
    }
    # every rule's own true positives too
    for rule, (name, positives, _) in cases().items():
        files[f"cases/{rule}/{name}"] = "\n".join(positives) + "\n"
    root, base = scan_root(files)
    repo = base / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "pay.py").write_text(f'STRIPE = "{planted["stripe"]}"\n')
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "add")
    (repo / "pay.py").write_text("STRIPE = os.environ['STRIPE']\n")
    git(repo, "commit", "-qam", "remove")

    user = make_user("operator")
    for op, params in (
        ("security.scan_secrets", {"root": root.name}),
        ("security.scan_secrets", {"root": root.name, "path": "repo", "history": True}),
        ("security.scan_source", {"root": root.name, "path": "site"}),
    ):
        job, _ = run_scan(user, op, params)
        assert job.status == "succeeded", job.error
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = f"TOKEN={planted['image']}\n".encode()
        info = tarfile.TarInfo("app/.env")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    job, _ = run_scan(user, "security.scan_image", {"staged": stage(user, "export.tar", buf.getvalue())})
    assert job.status == "succeeded", job.error

    found = set(Finding.objects.values_list("rule", flat=True))
    assert {"github-pat", "aws-secret-access-key", "generic-password-config", "stripe-secret-key", "gitlab-pat"} <= found
    assert {"django-hardcoded-secret-key", "B106", "B107"} <= found  # static findings about hard-coded secrets are masked too
    assert len(found) >= 60
    secrets = list(planted.values())
    for _name, positives, _misses in cases().values():
        secrets.extend(token for line in positives for token in _tokens(line))

    database = all_database_text()
    pages = []
    client.force_login(user)
    pages.append(client.get("/security/findings/?status=all").content.decode())
    for f in Finding.objects.all()[:400]:
        pages.append(client.get(f"/security/findings/{f.pk}/").content.decode())
    pages.append(client.get("/security/findings/export.csv?status=all").getvalue().decode())
    pages.append(str(invoke("security.export_sarif", actor_of(user), {"status": ["open", "triaged", "fixed"]}).result.sarif))
    everything = database + "\n".join(pages)
    leaked = [s for s in secrets if s in everything]
    assert not leaked, f"{len(leaked)} secrets stored or shown in full, e.g. {leaked[0][:12]}…"


def _tokens(line: str) -> list[str]:
    """The long random parts of a sample line (what a leak would expose); a GCP private_key_id
    (40 hex) is an identifier shown in previews, not a secret."""
    tokens = re.findall(r"[A-Za-z0-9+/_\-]{16,}", line)
    return [t for t in tokens if sum(c.isdigit() for c in t) >= 2 and not t.isdigit() and not re.fullmatch(r"[0-9a-f]{40}", t)]
