"""SARIF 2.1.0 logs of findings (OASIS standard; the schema ships in
schemas/sarif-schema-2.1.0.json and the tests validate against it)."""

from __future__ import annotations

from urllib.parse import quote

from .models import Finding

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVEL = {"critical": "error", "high": "error", "medium": "warning", "unknown": "warning", "low": "note", "info": "note"}
# GitHub code scanning reads properties.security-severity (a CVSS-like number) to rank results.
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}
DRIVERS = {
    "secrets": "opsconsole secret scanner",
    "dependencies": "opsconsole dependency audit (OSV)",
    "source": "opsconsole static checks (bandit + Django)",
    "image": "opsconsole image checks",
}


def _rule(f: Finding) -> dict:
    tags = ["security", *(t for t in (f.owasp, f.cwe) if t)]
    rule = {
        "id": f.rule,
        "name": f.rule.replace("-", "_"),
        "shortDescription": {"text": f.title.split(": ", 1)[-1][:200] if f.kind == "dependencies" else f.title[:200]},
        "defaultConfiguration": {"level": LEVEL.get(f.severity, "warning")},
        "properties": {"tags": tags, "security-severity": SECURITY_SEVERITY.get(f.severity, "5.5")},
    }
    if f.remediation:
        rule["help"] = {"text": f.remediation}
    return rule


def _result(f: Finding, index: int) -> dict:
    location: dict = {"artifactLocation": {"uri": quote(f.path or f.package or f.target, safe="/:@._-")}}
    if f.line:
        location["region"] = {"startLine": f.line}
        if f.preview:
            location["region"]["snippet"] = {"text": f.preview}
    message = f.title + (f" {f.remediation}" if f.remediation else "")
    result = {
        "ruleId": f.rule,
        "ruleIndex": index,
        "level": LEVEL.get(f.severity, "warning"),
        "message": {"text": message},
        "locations": [{"physicalLocation": location}],
        "partialFingerprints": {"opsconsole/v1": f.fingerprint},
        "properties": {
            "findingId": f.pk, "target": f.target, "severity": f.severity, "status": f.status,
            "firstSeen": f.first_seen.isoformat(), "lastSeen": f.last_seen.isoformat(),
        },
    }  # fmt: skip
    if f.example:
        result["properties"]["example"] = True
    if f.package:
        result["properties"].update(package=f.package, version=f.version, fixedIn=f.fixed_in, aliases=list(f.aliases or []))
    if f.commit:
        result["properties"]["commit"] = f.commit
    if f.status in (Finding.ACCEPTED, Finding.FALSE_POSITIVE):
        why = (
            "accepted risk" + (f" until {f.accepted_until:%Y-%m-%d}" if f.accepted_until else "")
            if f.status == Finding.ACCEPTED
            else "false positive"
        )
        if f.exception_id:
            exc = f.exception
            why = f"exception #{exc.pk} ({exc.package} {exc.versions}) until {exc.expires_at:%Y-%m-%d}: {exc.reason}"[:1000]
        result["suppressions"] = [{"kind": "external", "status": "accepted", "justification": why}]
    return result


def build(findings: list[Finding]) -> dict:
    runs = []
    for kind, driver in DRIVERS.items():
        rows = [f for f in findings if f.kind == kind]
        if not rows:
            continue
        rules: dict[str, int] = {}
        rule_list, results = [], []
        for f in rows:
            if f.rule not in rules:
                rules[f.rule] = len(rule_list)
                rule_list.append(_rule(f))
            results.append(_result(f, rules[f.rule]))
        runs.append(
            {
                "tool": {"driver": {"name": driver, "version": "1.0.0", "rules": rule_list}},
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        )
    if not runs:
        runs.append({"tool": {"driver": {"name": "opsconsole security scanner", "version": "1.0.0", "rules": []}}, "results": []})
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": runs}
