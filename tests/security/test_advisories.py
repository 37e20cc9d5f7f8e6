"""OSV advisories: import (files, directories, all.zip), range semantics at
their edges for PyPI (PEP 440) and npm (semver), aliases, CVSS severity and
the version to upgrade to — with the real advisories shipped in the repo."""

import json
import zipfile

import pytest
from django.core.management import call_command

from apps.security.deps import cvss, osv
from apps.security.deps.lockfiles import NPM, PYPI, Dependency
from apps.security.deps.semver import InvalidSemver, Semver
from apps.security.models import Advisory, AffectedPackage


def test_semver_precedence_follows_the_spec():
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.1.0",
        "1.10.0",
        "2.0.0",
    ]
    versions = [Semver(v) for v in ordered]
    assert sorted(reversed(versions)) == versions
    assert Semver("1.0.0+build.5") == Semver("1.0.0")
    assert Semver("v4.17.21") == Semver("4.17.21")
    assert Semver("0") < Semver("0.0.1")
    with pytest.raises(InvalidSemver):
        Semver("not.a.version")


@pytest.mark.parametrize(
    ("vector", "score", "level"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "critical"),  # minimist
        ("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H", 7.2, "high"),  # lodash
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5, "high"),  # Django
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N", 6.1, "medium"),  # requests
        ("CVSS:3.1/AV:N/AC:H/PR:H/UI:N/S:U/C:H/I:H/A:N", 5.9, "medium"),  # urllib3
        ("CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:N/A:N", 3.3, "low"),
    ],
)
def test_cvss_base_scores_match_the_published_ones(vector, score, level):
    assert cvss.base_score("CVSS_V3", vector) == score
    assert cvss.rating(score) == level


@pytest.mark.parametrize(
    ("severity", "db_rating", "expected"),
    [
        # CVSS v4.0 (FIRST's calculator: 9.3 critical; 6.9 medium) wins over the v3 vector of the same record
        ([{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"},
          {"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}], None, ("critical", 9.3)),
        ([{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N"}], None, ("medium", 6.9)),
        ([{"type": "CVSS_V2", "score": "AV:N/AC:L/Au:N/C:P/I:P/A:P"}], None, ("high", 7.5)),  # v2: no prefix
        ([{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/garbage"}], "HIGH", ("high", None)),  # invalid vector: the database's rating
        ([], "MODERATE", ("medium", None)),
        ([], None, ("unknown", None)),  # no score, no rating: said so, not made "medium"
    ],
)  # fmt: skip
def test_severity_from_cvss_v2_v3_v4_or_the_database_rating(severity, db_rating, expected):
    record = {"id": "X", "severity": severity, "database_specific": {"severity": db_rating} if db_rating else {}}
    level, _, score = cvss.severity_of(record)
    assert (level, score) == expected


def test_shipped_advisories_import_with_aliases_and_severity(advisories):
    assert advisories.records == 5
    requests = Advisory.objects.get(pk="GHSA-j8r2-6x86-q33q")
    assert requests.aliases == ["CVE-2023-32681"]
    assert (requests.severity, requests.cvss_score) == ("medium", 6.1)
    assert AffectedPackage.objects.get(advisory=requests).name == "requests"
    assert Advisory.objects.get(pk="GHSA-xvch-5gv4-984h").severity == "critical"
    assert AffectedPackage.objects.filter(advisory_id="GHSA-jh3w-4vvf-mjgr", name="django").count() == 3  # PEP 503 name


def vulns(*deps):
    return {(v.dependency.name, v.dependency.version, v.advisory.id, v.fixed_in) for v in osv.audit(deps)}


def test_pypi_range_edges(advisories):
    def hit(name, version):
        return {(adv, fix) for _, _, adv, fix in vulns(Dependency(PYPI, name, version, "requirements.txt"))}

    assert hit("requests", "2.2.1") == set()  # before introduced
    assert hit("requests", "2.3.0") == {("GHSA-j8r2-6x86-q33q", "2.31.0")}  # introduced is affected
    assert hit("requests", "2.31.0rc1") == {("GHSA-j8r2-6x86-q33q", "2.31.0")}  # a pre-release of the fix is not the fix
    assert hit("requests", "2.31.0") == set()  # fixed is safe
    assert hit("Requests", "2.30.0") == {("GHSA-j8r2-6x86-q33q", "2.31.0")}  # names are normalised
    assert hit("django", "3.2.19") == {("GHSA-jh3w-4vvf-mjgr", "3.2.20")}
    assert hit("Django", "4.1.9") == {("GHSA-jh3w-4vvf-mjgr", "4.1.10")}
    assert hit("django", "4.1.10") == set()
    assert hit("django", "4.2") == {("GHSA-jh3w-4vvf-mjgr", "4.2.3")}  # 4.2 == 4.2.0 in PEP 440
    assert hit("django", "5.0") == set()
    assert hit("urllib3", "1.26.16") == {("GHSA-v845-jxx5-vc9f", "1.26.17")}
    assert hit("urllib3", "2.0.5") == {("GHSA-v845-jxx5-vc9f", "2.0.6")}
    assert hit("urllib3", "2.0.6") == set()
    assert hit("urllib3", "not-a-version") == set()


def test_npm_range_edges(advisories):
    def hit(name, version):
        return {(adv, fix) for _, _, adv, fix in vulns(Dependency(NPM, name, version, "package-lock.json"))}

    assert hit("lodash", "4.17.20") == {("GHSA-35jh-r3h4-6jhm", "4.17.21")}
    assert hit("lodash", "4.17.21-beta.1") == {("GHSA-35jh-r3h4-6jhm", "4.17.21")}
    assert hit("lodash", "4.17.21") == set()
    assert hit("minimist", "0.2.3") == {("GHSA-xvch-5gv4-984h", "0.2.4")}
    assert hit("minimist", "0.2.4") == set()  # fixed in the 0.x line
    assert hit("minimist", "1.0.0") == {("GHSA-xvch-5gv4-984h", "1.2.6")}  # introduced again in 1.x
    assert hit("minimist", "1.2.5") == {("GHSA-xvch-5gv4-984h", "1.2.6")}
    assert hit("minimist", "1.2.6") == set()


def test_last_affected_limit_and_exact_versions(db, tmp_path):
    record = {
        "id": "TEST-2024-1",
        "aliases": ["CVE-2024-0001"],
        "summary": "test",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "left_pad"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"last_affected": "1.4.2"}]}],
            },
            {
                "package": {"ecosystem": "npm", "name": "leftpad"},
                "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "2.0.0"}, {"limit": "1.5.0"}]}],
            },
            {"package": {"ecosystem": "PyPI", "name": "oldlib"}, "versions": ["0.9", "0.9.1"]},
        ],
        "database_specific": {"severity": "HIGH"},
    }
    (tmp_path / "t.json").write_text(json.dumps(record))
    call_command("import_osv", str(tmp_path / "t.json"))
    assert Advisory.objects.get(pk="TEST-2024-1").severity == "high"  # no CVSS: the database's rating

    def hit(eco, name, version):
        return bool(vulns(Dependency(eco, name, version, "x")))

    assert [hit(PYPI, "left-pad", v) for v in ("0.9", "1.0", "1.4.2", "1.4.3")] == [False, True, True, False]
    assert [hit(NPM, "leftpad", v) for v in ("1.4.9", "1.5.0", "1.9.0")] == [True, False, False]
    assert [hit(PYPI, "oldlib", v) for v in ("0.9", "0.9.1", "0.9.2")] == [True, True, False]


def test_import_reads_an_all_zip_export_and_replaces_records(db, tmp_path):
    record = json.loads((osv.Path(__file__).parents[2] / "apps/security/advisories/GHSA-35jh-r3h4-6jhm.json").read_text())
    with zipfile.ZipFile(tmp_path / "all.zip", "w") as zf:
        zf.writestr("GHSA-35jh-r3h4-6jhm.json", json.dumps(record))
        zf.writestr(
            "WITHDRAWN-1.json",
            json.dumps(
                {
                    "id": "WITHDRAWN-1",
                    "withdrawn": "2024-01-01T00:00:00Z",
                    "affected": [{"package": {"ecosystem": "npm", "name": "lodash"}, "versions": ["4.17.20"]}],
                }
            ),
        )
    call_command("import_osv", str(tmp_path / "all.zip"))
    call_command("import_osv", str(tmp_path / "all.zip"))  # idempotent
    assert AffectedPackage.objects.filter(advisory_id="GHSA-35jh-r3h4-6jhm").count() == 2
    assert {v.advisory.id for v in osv.audit([Dependency(NPM, "lodash", "4.17.20", "x")])} == {"GHSA-35jh-r3h4-6jhm"}  # withdrawn ignored
