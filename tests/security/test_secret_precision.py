"""Precision on real code, recall kept: the lines real packages are full of
(from the triage of 217 MB of installed Python packages) are not secrets;
severity follows how sure a rule is; structured tokens need no telling name."""

import pytest

from apps.security.secretscan.engine import SecretScanner

from .samples import ALNUM, B64, HEX, URLSAFE, Gen

SCANNER = SecretScanner(b"precision-test-key")
g = Gen("precision")


def hits(path: str, text: str):
    return [h for h in SCANNER.scan_bytes(path, text.encode()) if not h.example]


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("pkg/_windows.py", "x = _winapi.WAIT_OBJECT_0"),
        ("pkg/types.py", "request_type = v2025.InitializeRequest"),
        ("pkg/client.py", "_factory = _HTTP11ClientFactory"),
        ("pkg/crt.py", "    algorithm=AwsSigningAlgorithm.V4_ASYMMETRIC,"),
        ("pkg/models.py", "PBES2HSAlgModel = PBES2HSAlgKeyEncryption"),
        ("pkg/auth.py", 'credential = f"{policy}:{sas_key}"'),
        ("pkg/auth.py", "password = get_password(user, realm)"),
        ("setup.cfg", "password = self.password_manager.lookup(realm)"),
        ("conf/app.yaml", "token: !ref secrets.api_token"),
        ("pkg/data/paginators-1.json", '"output_token": "nextPageToken",'),
        ("pkg/data/paginators-1.json", '"input_token": "ContinuationToken",'),
        ("pkg/data/examples.json", '"GatewayARN": "arn:aws:storagegateway:us-east-1:111122223333:gateway/sgw-12A3456B"'),
        ("pkg/plugins.py", "password_keyword = r'(?:secret[-_]?(?:access)?[-_]?key)'"),
        ("pkg/lexer.py", "_token_end = r'(?=\\s|#|[)\\]]|$)'"),
        ("pkg/protocol.py", '"password": "string?",'),
        ("pkg/iam.py", 'password_last_used = "not_supported"'),
        ("pkg/iam.json", '"PasswordLastUsed": "2016-09-08T21:47:36Z",'),
        ("pkg/ws.py", 'b64patch.return_value = b"QIatSt9QkZPyS4QQfdufO8TgkL0="'),  # a SHA-1 digest, base64
        ("pkg/types.py", "m = Model(base64_bytes=b'VGhpcyBpcyB0aGUgd2F5')"),  # "This is the way"
        ("pkg/policies.py", '"Sid":"Ec2ViaMgnTagOnCreate"'),
        ("pkg/resources.py", ">>> names = 'Setuptools-1.2.3b1.egg', 'Setuptools-1.2.3.egg'"),
        ("pkg/lock.py", f'integrity = "sha512-{g(B64, 86)}=="'),
        ("pkg/ids.py", f'request_uuid = "{g.uuid()}"'),
        ("pkg/ids.py", f'digest = "{g(HEX, 64)}"'),
        ("pkg/template.py", '>>> token = \'variable|default:"Default value"|date:"Y-m-d"\''),
        ("app/settings.py", 'password = "test-password"'),  # a value that names itself: a stand-in
        ("app/settings.py", 'client_secret = "my-secret-value-here"'),
    ],
)
def test_code_is_not_a_secret(path, line):
    assert hits(path, f"import os\n{line}\n") == [], line


def test_documentation_database_urls_are_examples_not_high():
    for text in ("sqla+postgresql://scott:tiger@localhost/mydatabase", "postgres://user:p#ssword!@localhost/foobar"):
        found = SCANNER.scan_bytes("kombu/transport/sqlalchemy/__init__.py", f'"""\n{text}\n"""\n'.encode())
        assert [(h.rule, h.example, h.severity) for h in found] == [("database-url-password", True, "info")]
    real = SCANNER.scan_bytes("deploy/app.env", f"DATABASE_URL=postgres://app:{g(ALNUM, 20)}@db-prod-1.internal:5432/app\n".encode())
    assert [(h.rule, h.severity) for h in real] == [("database-url-password", "high")]


def test_severity_follows_confidence_for_keyword_and_entropy_rules():
    value = g(ALNUM, 24)
    assert [h.severity for h in SCANNER.scan_bytes("app/settings.py", f'client_secret = "{value}"\n'.encode())] == ["medium"]
    assert [h.severity for h in SCANNER.scan_bytes("tests/test_login.py", f'client_secret = "{value}"\n'.encode())] == ["low"]
    documented = SCANNER.scan_bytes("docs/setup.md", f'client_secret = "{value}"\n'.encode())
    assert [(h.example, h.severity) for h in documented] == [(True, "info")]
    # a provider's token keeps its severity wherever it is
    token = f"ghp_{g(ALNUM, 36)}"
    assert [h.severity for h in SCANNER.scan_bytes("docs/setup.md", f"export GH={token}\n".encode())] == ["critical"]


@pytest.mark.parametrize(
    ("rule", "line"),
    [
        ("databricks-token", f'cfg = {{"h": "adb-1.azuredatabricks.net", "t": "dapi{g(HEX, 32)}"}}'),
        ("mailgun-api-key", f'requests.post(url, auth=("api", "key-{g(HEX, 32)}"))'),
        ("twilio-api-key", f'creds = ("SK{g(HEX, 32)}", other)'),
        ("openai-project-key", f'c = OpenAI(api_key="sk-proj-{g(URLSAFE, 156)}")'),
        ("github-fine-grained-pat", f'headers = {{"Authorization": "token github_pat_{g(ALNUM, 22)}_{g(ALNUM, 59)}"}}'),
        ("pypi-token", f"v = pypi-AgEIcHlwaS5vcmc{g(URLSAFE, 70)}"),
    ],
)
def test_structured_tokens_need_no_telling_name(rule, line):
    found = hits("app/module.py", f"import os\n{line}\n")
    assert [h.rule for h in found] == [rule]
    assert found[0].severity in ("high", "critical")
