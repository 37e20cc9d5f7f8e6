"""A secrets baseline end to end: `manage.py secrets_baseline` on a scan root holding a
secret, then security.scan_secrets through the gateway: the known secret is not reported,
a secret added afterwards is."""

import json

from django.core.management import call_command

from apps.security.models import Finding
from apps.security.secretscan import baseline

from .samples import ALNUM, Gen

g = Gen("baseline")
KNOWN = "ghp_" + g(ALNUM, 36)
LATER = "glpat-" + g(ALNUM, 20)


def test_a_baselined_secret_is_not_reported_and_a_new_one_is(scan_root, make_user, run_scan):
    root, base = scan_root({"app/settings.py": f'GITHUB = "{KNOWN}"\n', "README.md": "hello\n"})
    operator = make_user("operator")
    job, scan = run_scan(operator, "security.scan_secrets", {"root": root.name})
    assert job.status == "succeeded", job.error
    assert scan.stats["new"] == 1 and Finding.objects.get().rule == "github-pat"

    call_command("secrets_baseline", str(base))
    written = (base / baseline.FILENAME).read_text()
    assert KNOWN not in written  # fingerprints, never the secret
    assert [entry["path"] for entry in json.loads(written)["results"]] == ["app/settings.py"]

    job, scan = run_scan(operator, "security.scan_secrets", {"root": root.name})
    assert job.status == "succeeded", job.error
    assert (job.result["findings"], job.result["new"]) == (0, 0)
    assert Finding.objects.get(rule="github-pat").status == "fixed"  # known now: not reported any more

    (base / "app/settings.py").write_text(f'# moved down\nGITHUB = "{KNOWN}"\nGITLAB = "{LATER}"\n')
    job, scan = run_scan(operator, "security.scan_secrets", {"root": root.name})
    assert job.status == "succeeded", job.error
    assert (job.result["findings"], job.result["new"]) == (1, 1)
    new = Finding.objects.get(last_scan=scan)
    assert (new.rule, new.path, new.line, new.status) == ("gitlab-pat", "app/settings.py", 3, "open")
