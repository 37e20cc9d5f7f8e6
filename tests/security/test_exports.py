"""SARIF 2.1.0 (validated against the official OASIS schema shipped in the
repo) and CSV exports of findings of every kind."""

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
from django.utils import timezone

from apps.core.gateway import invoke
from apps.security import findings
from apps.security.findings import Observation
from apps.security.models import Finding, Scan

from .samples import ALNUM, Gen

SCHEMA = json.loads((Path(__file__).parents[2] / "apps/security/schemas/sarif-schema-2.1.0.json").read_text())
g = Gen("exports")


@pytest.fixture
def every_kind(scan_root, advisories, make_user, run_scan):
    root, _ = scan_root(
        {
            "app/settings.py": f'DEBUG = True\nSECRET_KEY = "x"\nINSTALLED_APPS = []\nTOKEN = "ghp_{g(ALNUM, 36)}"\n',
            "requirements.txt": "requests==2.30.0\n",
            "docs/aws.md": "AKIAIOSFODNN7EXAMPLE\n",
        }
    )
    user = make_user("operator")
    for op in ("security.scan_secrets", "security.audit_dependencies", "security.scan_source"):
        job, _ = run_scan(user, op, {"root": root.name})
        assert job.status == "succeeded", job.error
    image = Scan.objects.create(kind="image", target="image:web:latest")
    findings.record(
        image,
        [
            Observation(
                kind="image",
                rule="image-runs-as-root",
                title='=HYPERLINK("http://evil")',
                severity="high",
                path="image config",
                identity="user",
            )
        ],
        timezone.now(),
    )
    return user


def test_sarif_export_is_valid_against_the_official_schema(every_kind, actor_of):
    out = invoke("security.export_sarif", actor_of(every_kind), {}).result
    jsonschema.Draft4Validator.check_schema(SCHEMA)
    errors = sorted(jsonschema.Draft4Validator(SCHEMA).iter_errors(out.sarif), key=str)
    assert not errors, [e.message for e in errors[:5]]
    sarif = out.sarif
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-schema-2.1.0.json")
    drivers = [run["tool"]["driver"]["name"] for run in sarif["runs"]]
    assert len(drivers) == 4
    results = [r for run in sarif["runs"] for r in run["results"]]
    assert out.results == len(results) == Finding.objects.filter(status__in=["open", "triaged"]).count()
    dep = next(r for r in results if r["ruleId"] == "CVE-2023-32681")
    assert dep["properties"]["fixedIn"] == "2.31.0" and dep["properties"]["aliases"] == ["GHSA-j8r2-6x86-q33q"]
    assert dep["level"] == "warning"
    secret = next(r for r in results if r["ruleId"] == "github-pat")
    region = secret["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] == 4 and "********" in region["snippet"]["text"]
    for run in sarif["runs"]:
        for r in run["results"]:
            assert run["tool"]["driver"]["rules"][r["ruleIndex"]]["id"] == r["ruleId"]


def test_accepted_findings_export_as_suppressed(every_kind, actor_of):
    actor = actor_of(every_kind)
    f = Finding.objects.get(rule="django-debug-true")
    invoke(
        "security.triage_finding",
        actor,
        {
            "finding_id": f.pk,
            "status": "accepted",
            "comment": "dev only",
            "accepted_until": (timezone.now() + timedelta(days=30)).isoformat(),
        },
    )
    sarif = invoke("security.export_sarif", actor, {"status": ["open", "triaged", "accepted"]}).result.sarif
    assert not list(jsonschema.Draft4Validator(SCHEMA).iter_errors(sarif))
    result = next(r for run in sarif["runs"] for r in run["results"] if r["ruleId"] == "django-debug-true")
    assert result["suppressions"][0]["status"] == "accepted" and result["suppressions"][0]["justification"].startswith(
        "accepted risk until"
    )


def test_csv_export_streams_every_finding_and_defuses_formulas(every_kind, client):
    client.force_login(every_kind)
    response = client.get("/security/findings/export.csv?status=all")
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == Finding.objects.count()
    image = next(r for r in rows if r["rule"] == "image-runs-as-root")
    assert image["title"].startswith("'=HYPERLINK")  # a spreadsheet shows it as text
    assert {r["kind"] for r in rows} == {"secrets", "dependencies", "source", "image"}
    sarif = client.get("/security/findings/export.sarif")
    assert sarif["Content-Type"] == "application/sarif+json" and json.loads(sarif.content)["version"] == "2.1.0"
