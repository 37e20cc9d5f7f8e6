"""Every secret rule finds its true positives and stays quiet on realistic near-misses."""

import pytest

from apps.security.secretscan.engine import ALL_RULES, SecretScanner

from .samples import Gen, cases

CASES = cases()
SCANNER = SecretScanner(b"rules-test-key")


def scan(name: str, text: str):
    return SCANNER.scan_bytes(f"app/{name}", f"import os\n{text}\n".encode())


def test_at_least_sixty_rules_each_with_cases():
    ids = [r.id for r in ALL_RULES]
    assert len(ids) >= 60
    assert len(set(ids)) == len(ids)
    assert set(ids) == set(CASES), "every rule needs true positives and near-misses in samples.py"


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_true_positives(rule_id):
    name, positives, _ = CASES[rule_id]
    for text in positives:
        hits = [h for h in scan(name, text) if h.rule == rule_id]
        assert hits, f"{rule_id} missed {text[:90]!r}: got {[h.rule for h in scan(name, text)]}"
        assert hits[0].line == 2
        assert not hits[0].example
        assert "********" in hits[0].preview
        assert len(hits[0].fingerprint) == 64


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_near_misses(rule_id):
    name, _, misses = CASES[rule_id]
    for text in misses:
        assert not [h for h in scan(name, text) if h.rule == rule_id], f"{rule_id} fired on the near-miss {text[:90]!r}"


def test_documentation_examples_are_flagged_as_examples():
    hits = scan("README.md", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    assert {(h.rule, h.example, h.severity) for h in hits} == {
        ("aws-access-key-id", True, "info"),
        ("aws-secret-access-key", True, "info"),
    }
    assert [h.example for h in scan("docs.md", 'password = "changeme"')] == [True]


def test_uuids_and_hashes_are_not_secrets():
    g = Gen("hashes")
    lines = [
        f'id = "{g.uuid()}"',
        f"trace_id: {g.uuid()}",
        f'sha256 = "{g("0123456789abcdef", 64)}"',
        f'md5sum = "{g("0123456789abcdef", 32)}"',
        f"commit {g('0123456789abcdef', 40)}",
        f'etag = "{g("0123456789abcdef", 32)}"',
        f'"resolved": "https://registry.npmjs.org/x/-/x-1.0.0.tgz", "integrity": "sha512-{g("abcdefABCDEF0123456789+/", 86)}=="',
        f'checksum = "{g("0123456789ABCDEF", 64)}"',
    ]
    for line in lines:
        assert scan("app.py", line) == [], line


def test_aws_secret_key_next_to_its_access_key_is_paired_without_a_keyword():
    g = Gen("pair")
    key_id, secret = (
        "AKIA" + g("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16),
        g("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+", 40),
    )
    csv = f"User name,Access key ID,Secret access key\ndeploy,{key_id},{secret}\n"
    rules = sorted(h.rule for h in SCANNER.scan_bytes("credentials.csv", csv.encode()))
    assert rules == ["aws-access-key-id", "aws-secret-access-key"]


def test_more_specific_rule_wins_over_generic_ones():
    g = Gen("specific")
    token = "ghp_" + g("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 36)
    assert [h.rule for h in scan("app.py", f'api_token = "{token}"')] == ["github-pat"]
