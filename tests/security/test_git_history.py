"""History scans read every blob reachable from the refs, once, through git:
a secret added and then removed is still found, with the commit that added it."""

import pytest

from apps.security import gitscan

from .conftest import git
from .samples import ALNUM, Gen

g = Gen("git")


@pytest.fixture
def repo_with_removed_secret(scan_root):
    root, base = scan_root({})
    repo = base / "service"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    token = "ghp_" + g(ALNUM, 36)
    (repo / "app.py").write_text("print('hello')\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "first")
    (repo / "settings.py").write_text(f'GITHUB_TOKEN = "{token}"\nDEBUG = False\n')
    (repo / "copy.py").write_text(f'GITHUB_TOKEN = "{token}"\nDEBUG = False\n')  # the very same blob twice
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "add settings")
    added = git(repo, "rev-parse", "HEAD")
    (repo / "settings.py").write_text('GITHUB_TOKEN = os.environ["GITHUB_TOKEN"]\nDEBUG = False\n')
    (repo / "copy.py").unlink()
    git(repo, "commit", "-qam", "remove the token")
    git(repo, "checkout", "-qb", "feature")
    (repo / "feature.py").write_text(f"SLACK = 'xoxb-{g('0123456789', 12)}-{g('0123456789', 13)}-{g(ALNUM, 24)}'\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "feature branch")
    git(repo, "checkout", "-q", "main")
    return root, repo, token, added


def test_blobs_are_listed_once(repo_with_removed_secret):
    _, repo, _, _ = repo_with_removed_secret
    blobs, too_large = gitscan.blobs(repo, 1 << 20)
    assert too_large == 0
    assert len({b.sha for b in blobs}) == len(blobs)
    # app.py, settings.py (twice: with and without the token; copy.py is the same blob), feature.py
    assert len(blobs) == 4
    contents = dict((b.sha, data) for b, data in gitscan.contents(repo, blobs))
    assert sorted(len(v) for v in contents.values()) == sorted(b.size for b in blobs)


def test_history_scan_finds_the_removed_secret_and_its_commit(repo_with_removed_secret, make_user, run_scan):
    root, repo, token, added = repo_with_removed_secret
    assert token not in (repo / "settings.py").read_text()  # gone from the working tree
    job, scan = run_scan(make_user("operator"), "security.scan_secrets", {"root": root.name, "path": "service", "history": True})
    assert job.status == "succeeded", job.error
    found = {(f.rule, f.path, f.commit) for f in scan.findings.all()}
    # one blob, two paths: reported once, at the first path git names for it
    assert [(path in ("settings.py", "copy.py"), commit) for rule, path, commit in found if rule == "github-pat"] == [(True, added)]
    assert any(rule == "slack-bot-token" and path == "feature.py" for rule, path, _ in found)  # other refs are read too
    assert scan.target == f"git:{root.name}/service"
    assert scan.stats["files"] == 4
    # the working-tree scan of the same repository finds nothing
    job, scan = run_scan(make_user("operator"), "security.scan_secrets", {"root": root.name, "path": "service"})
    assert scan.stats["total"] == 0


def test_history_needs_a_repository(scan_root, make_user, run_scan):
    root, _ = scan_root({"plain/a.txt": "x"})
    job, scan = run_scan(make_user("operator"), "security.scan_secrets", {"root": root.name, "path": "plain", "history": True})
    assert job.status == "failed"
    assert "not a git repository" in job.error
    assert scan.status == "failed"
