"""Findings people can act on: one per vulnerability across its ids (CVE, GHSA,
PYSEC), severity from CVSS or the database, the fixed version, pnpm-lock.yaml
read, and every lockfile the audit did not read named in its result."""

import pytest
from django.core.management import call_command

from apps.security.deps import lockfiles, osv
from apps.security.deps.lockfiles import NPM, PYPI, Dependency
from apps.security.models import Advisory, Finding

PNPM_V5 = """lockfileVersion: 5.4
packages:
  /lodash/4.17.20:
    resolution: {integrity: sha512-x}
  /@babel/core/7.0.0_react@17.0.2:
    resolution: {integrity: sha512-y}
  /local-thing/0.0.0:
    resolution: {directory: ../local-thing, type: directory}
    name: local-thing
    version: file:../local-thing
"""
PNPM_V6 = """lockfileVersion: '6.0'
packages:
  /lodash@4.17.20:
    resolution: {integrity: sha512-x}
  /@babel/core@7.0.0(react@17.0.2):
    resolution: {integrity: sha512-y}
"""
PNPM_V9 = """lockfileVersion: '9.0'
importers:
  .:
    dependencies:
      minimist: {specifier: ^1.2.0, version: 1.2.5}
packages:
  minimist@1.2.5:
    resolution: {integrity: sha512-z}
  '@babel/core@7.0.0':
    resolution: {integrity: sha512-y}
snapshots:
  minimist@1.2.5: {}
"""


@pytest.mark.parametrize("text", [PNPM_V5, PNPM_V6, PNPM_V9], ids=["v5", "v6", "v9"])
def test_pnpm_lockfiles_of_every_format(text):
    parsed = lockfiles.parse("web/pnpm-lock.yaml", text)
    found = {(d.ecosystem, d.name, d.version) for d in parsed.dependencies}
    assert (NPM, "@babel/core", "7.0.0") in found
    assert found & {(NPM, "lodash", "4.17.20"), (NPM, "minimist", "1.2.5")}
    assert all(d.manifest == "web/pnpm-lock.yaml" for d in parsed.dependencies)
    if text is PNPM_V5:
        assert any("local-thing" in n and "not checked" in n for n in parsed.notes)


@pytest.fixture
def snapshot(db):
    call_command("import_osv", "--shipped")


def test_one_finding_per_vulnerability_across_cve_ghsa_and_pysec(snapshot, scan_root, make_user, run_scan):
    root, _ = scan_root({"requirements.txt": "requests==2.30.0\ndjango==4.2.2\n", "web/pnpm-lock.yaml": PNPM_V9})
    job, scan = run_scan(make_user("operator"), "security.audit_dependencies", {"root": root.name})
    assert job.status == "succeeded", job.error
    requests = Finding.objects.get(target=scan.target, package="requests")  # PYSEC-2023-74 and GHSA-j8r2-6x86-q33q: one finding
    assert requests.rule == "CVE-2023-32681" and requests.aliases == ["GHSA-j8r2-6x86-q33q", "PYSEC-2023-74"]
    assert (requests.severity, requests.fixed_in) == ("medium", "2.31.0")  # the GHSA's CVSS 3.1 score (6.1)
    assert "(fixed in 2.31.0)" in requests.title and "CVSS 6.1" in requests.detail
    django = list(Finding.objects.filter(target=scan.target, package="django"))
    assert len(django) > 3  # the PyPA database knows many for 4.2.2
    ids = [{f.rule, *f.aliases} for f in django]
    assert all(a.isdisjoint(b) for i, a in enumerate(ids) for b in ids[i + 1 :])  # no vulnerability twice
    merged = next(f for f in django if f.rule == "CVE-2023-36053")
    assert set(merged.aliases) == {"GHSA-jh3w-4vvf-mjgr", "PYSEC-2023-100"} and merged.severity == "high"
    # records with neither a vector nor a rating say so rather than pretend to be "medium"
    assert {f.severity for f in django} <= {"critical", "high", "medium", "low", "unknown"} and "unknown" in {f.severity for f in django}
    minimist = Finding.objects.get(target=scan.target, package="minimist")  # read from pnpm-lock.yaml
    assert (minimist.path, minimist.rule, minimist.severity, minimist.fixed_in) == (
        "web/pnpm-lock.yaml",
        "CVE-2021-44906",
        "critical",
        "1.2.6",
    )
    # the result says what the verdict rests on: the shipped snapshot, current as of 2024-10-10, stale
    notes = job.result["notes"]
    pypi = next(n for n in notes if n.startswith("PyPI advisories:"))
    assert notes.index(pypi) < 3  # first, before any lockfile note: a scan keeps only its first notes
    assert "the shipped snapshot, current as of 2024-10-10" in pypi and "STALE" in pypi


def test_an_audit_without_advisory_data_says_it_checked_against_nothing(db, scan_root, make_user, run_scan):
    root, _ = scan_root({"requirements.txt": "requests==2.30.0\n", "web/pnpm-lock.yaml": PNPM_V9})
    job, scan = run_scan(make_user("operator"), "security.audit_dependencies", {"root": root.name})
    assert job.status == "succeeded" and not Finding.objects.filter(target=scan.target).exists()
    for ecosystem in ("PyPI", "npm"):
        assert any(n.startswith(f"No {ecosystem} advisory is loaded") and "checked against nothing" in n for n in job.result["notes"])


def test_merged_advisories_take_the_most_severe_rating_of_any_of_them():
    dep = Dependency(PYPI, "demo", "1.0", "requirements.txt")
    scored = Advisory(id="PYSEC-2099-1", aliases=["CVE-2099-0001"], severity="medium", cvss_score=6.1)
    rated_only = Advisory(id="GHSA-aaaa-bbbb-cccc", aliases=["CVE-2099-0001"], severity="high", cvss_score=None)  # no vector
    unknown = Advisory(id="PYSEC-2099-2", aliases=[], severity="unknown", cvss_score=None)
    merged = osv.merge_aliases([osv.Vulnerability(dep, scored, "1.1"), osv.Vulnerability(dep, rated_only, "1.2"),
                                osv.Vulnerability(dep, unknown, "")])  # fmt: skip
    by_id = {m.id: m for m in merged}
    assert set(by_id) == {"CVE-2099-0001", "PYSEC-2099-2"}
    cve = by_id["CVE-2099-0001"]
    assert (cve.severity, cve.score, cve.fixed_in, cve.aliases) == ("high", 6.1, "1.2", ["GHSA-aaaa-bbbb-cccc", "PYSEC-2099-1"])
    assert (by_id["PYSEC-2099-2"].severity, by_id["PYSEC-2099-2"].score) == ("unknown", None)


def test_every_lockfile_not_read_is_named(advisories, scan_root, make_user, run_scan):
    files = {
        "requirements.txt": "requests==2.30.0\n",
        "web/package-lock.json": '{"lockfileVersion": 3, "packages": {"node_modules/lodash": {"version": "4.17.20"}}}',
        "svc/Cargo.lock": "",
        "svc/go.sum": "",
        "Gemfile.lock": "",
        "broken/poetry.lock": "[[package]\nname = ",
    }
    root, _ = scan_root(files)
    job, scan = run_scan(make_user("operator"), "security.audit_dependencies", {"root": root.name, "ecosystems": ["PyPI"]})
    unread = job.result["unread_lockfiles"]
    assert len(unread) == 5 and unread == scan.stats["unread_lockfiles"]
    named = " ".join(unread)
    for path in ("web/package-lock.json", "svc/Cargo.lock", "svc/go.sum", "Gemfile.lock", "broken/poetry.lock"):
        assert path in named
    assert "crates.io" in named and "npm was not among the ecosystems" in named
    assert {f.package for f in Finding.objects.filter(target=scan.target)} == {"requests"}
    assert any(n.startswith("The PyPI advisories were imported by hand") for n in job.result["notes"])
    assert not any("npm" in n for n in job.result["notes"] if "advisor" in n)  # npm was not asked for


WELL_KNOWN = {
    "Django": "3.2", "requests": "2.19.0", "urllib3": "1.24.1", "Jinja2": "2.10", "PyYAML": "5.3", "Pillow": "8.0.0",
    "cryptography": "3.2", "lxml": "4.6.0", "Flask": "0.12", "Werkzeug": "0.15.0", "paramiko": "2.4.0", "PyJWT": "1.7.0",
    "setuptools": "65.5.0", "SQLAlchemy": "1.2.0", "Twisted": "20.3.0",
}  # fmt: skip


def test_fifteen_well_known_vulnerable_pins_are_all_flagged_out_of_the_box(snapshot, scan_root, make_user, run_scan):
    root, _ = scan_root({"requirements.txt": "".join(f"{name}=={version}\n" for name, version in WELL_KNOWN.items())})
    job, scan = run_scan(make_user("operator"), "security.audit_dependencies", {"root": root.name})
    assert job.status == "succeeded", job.error
    flagged = {f.package for f in Finding.objects.filter(target=scan.target)}
    assert flagged == set(WELL_KNOWN)
