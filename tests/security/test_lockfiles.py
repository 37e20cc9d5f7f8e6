"""Lockfile parsing for every format, on real-shaped files, and the dependency
audit through the gateway: findings with aliases, severity and the upgrade."""

from pathlib import Path

import pytest

from apps.security.deps import lockfiles
from apps.security.models import Finding

FIXTURES = Path(__file__).parent / "lockfiles"


def parsed(name: str, as_name: str | None = None):
    result = lockfiles.parse(as_name or name, (FIXTURES / name).read_text())
    return sorted((d.ecosystem, d.name, d.version) for d in result.dependencies), result.notes


def test_requirements_pinned_with_hashes_markers_and_extras():
    deps, notes = parsed("requirements.txt")
    assert deps == [("PyPI", "certifi", "2023.7.22"), ("PyPI", "django", "4.2.2"), ("PyPI", "requests", "2.30.0")]
    assert any("urllib3 is not pinned" in n for n in notes)
    assert any("-r base.txt" in n for n in notes) and any("-e git+" in n for n in notes)


def test_poetry_pipfile_and_uv_locks():
    assert parsed("poetry.lock")[0] == [("PyPI", "django", "4.1.9"), ("PyPI", "sqlparse", "0.4.4")]
    deps, notes = parsed("Pipfile.lock")
    assert deps == [("PyPI", "pytest", "7.4.0"), ("PyPI", "requests", "2.31.0"), ("PyPI", "urllib3", "2.0.5")]
    assert any("mytool" in n for n in notes)
    assert parsed("uv.lock")[0] == [("PyPI", "urllib3", "1.26.16")]  # the editable project itself is left out


def test_package_lock_v3_and_v1():
    deps, _ = parsed("package-lock.json")
    assert deps == [
        ("npm", "@babel/core", "7.22.5"),
        ("npm", "lodash", "4.17.15"),
        ("npm", "lodash", "4.17.20"),
        ("npm", "minimist", "1.2.5"),
        ("npm", "mkdirp", "0.5.5"),
    ]
    deps, _ = parsed("package-lock.v1.json", "package-lock.json")
    assert deps == [("npm", "minimist", "0.0.8"), ("npm", "mkdirp", "0.5.1")]


def test_yarn_classic_and_berry():
    assert parsed("yarn.lock")[0] == [("npm", "@babel/code-frame", "7.22.5"), ("npm", "lodash", "4.17.20"), ("npm", "minimist", "1.2.6")]
    assert parsed("yarn.berry.lock", "yarn.lock")[0] == [
        ("npm", "@types/node", "20.4.2"),
        ("npm", "lodash", "4.17.21"),
        ("npm", "minimist", "1.2.5"),
    ]


def test_broken_lockfile_is_reported_not_crashed():
    with pytest.raises(lockfiles.LockfileError, match="could not be parsed"):
        lockfiles.parse("package-lock.json", "{ not json")
    assert lockfiles.kind_of("requirements-dev.txt") == "requirements"
    assert lockfiles.kind_of("setup.py") is None


def test_audit_dependencies_finds_fixes_and_closes(scan_root, advisories, make_user, run_scan):
    files = {name: (FIXTURES / name).read_text() for name in ("requirements.txt", "poetry.lock", "package-lock.json")}
    files["frontend/yarn.lock"] = (FIXTURES / "yarn.lock").read_text()
    root, base = scan_root(files)
    user = make_user("operator")
    job, scan = run_scan(user, "security.audit_dependencies", {"root": root.name})
    assert job.status == "succeeded", job.error
    found = {(f.package, f.version, f.rule, f.fixed_in, f.severity) for f in Finding.objects.filter(target=scan.target)}
    assert found == {
        ("django", "4.2.2", "CVE-2023-36053", "4.2.3", "high"),
        ("django", "4.1.9", "CVE-2023-36053", "4.1.10", "high"),
        ("requests", "2.30.0", "CVE-2023-32681", "2.31.0", "medium"),
        ("lodash", "4.17.20", "CVE-2021-23337", "4.17.21", "high"),
        ("lodash", "4.17.15", "CVE-2021-23337", "4.17.21", "high"),
        ("minimist", "1.2.5", "CVE-2021-44906", "1.2.6", "critical"),
    }
    requests = Finding.objects.get(target=scan.target, package="requests")
    assert requests.aliases == ["GHSA-j8r2-6x86-q33q"] and requests.path == "requirements.txt"
    assert requests.remediation == "Upgrade requests to 2.31.0 or later."
    assert requests.owasp.startswith("A06:2021")
    # the frontend's yarn.lock is read too: its lodash is affected, its minimist (1.2.6) is not
    assert {f.package for f in Finding.objects.filter(path="frontend/yarn.lock")} == {"lodash"}
    # upgrade requests and rescan: that finding is fixed, the rest stay open
    (base / "requirements.txt").write_text(
        (base / "requirements.txt").read_text().replace("requests[socks]==2.30.0", "requests[socks]==2.31.0")
    )
    job, scan2 = run_scan(user, "security.audit_dependencies", {"root": root.name})
    requests.refresh_from_db()
    assert requests.status == "fixed"
    assert (scan2.stats["fixed"], scan2.stats["new"], scan2.stats["total"]) == (1, 0, 6)
    assert requests.comments.last().text.startswith("Not seen in scan")
