"""The labelled corpus of bench/secret_scan.py: source trees with planted secrets and decoys, and its scoring.

Planted: the true positives of every rule (tests/security/samples.py) with fresh random values, structured tokens
under neutral names, each in the kind of file it lives in (.env, .npmrc, key.pem...). Decoys: every rule's
near-misses, UUIDs, hashes, integrity fields, documentation keys, placeholders, and lines from real packages that are
code, not secrets. Deterministic for a size and seed; `truth.json` at its top holds the planted lines, so a corpus
is built once and reused while its VERSION and size match.
"""

import json
import random
import shutil
from pathlib import Path

from tests.security.samples import Gen, cases

VERSION = 4
WORDS = [
    "user",
    "account",
    "order",
    "invoice",
    "payment",
    "session",
    "cache",
    "request",
    "response",
    "handler",
    "service",
    "client",
    "config",
    "value",
    "result",
    "item",
    "index",
    "count",
    "name",
    "path",
    "queue",
    "worker",
    "job",
    "task",
    "event",
    "metric",
    "report",
    "record",
    "batch",
    "stream",
    "buffer",
    "token_count",
    "key_name",
    "secret_santa",
    "password_hint",
    "api_version",
    "access_level",
    "private_notes",
    "auth_backend",
    "credential_store",
]


def _pool(rnd: random.Random) -> dict[str, list[str]]:
    def w():
        return rnd.choice(WORDS)

    def n():
        return rnd.randint(0, 999)

    templates = {
        "py": [
            lambda: f"def {w()}_{w()}(self, {w()}, {w()}=None):",
            lambda: f"    {w()} = self.{w()}.get({w()!r}, {n()})",
            lambda: f"    if {w()} is None or {w()} > {n()}:",
            lambda: f'        raise ValueError(f"bad {w()}: {{{w()}}}")',
            lambda: f'    logger.info("{w()} %s for {w()} %s", {w()}, {w()})',
            lambda: f"    return [{w()} for {w()} in {w()}s if {w()}.{w()}]",
            lambda: f"# {w().capitalize()} the {w()} before the {w()} is sent.",
            lambda: f"    {w()}_key = settings.{w().upper()}_KEY",
            lambda: '    token = request.headers.get("Authorization", "")',
            lambda: f"    password_hash = make_password({w()}.password)",
            lambda: f"class {w().capitalize()}{w().capitalize()}(models.Model):",
            lambda: f"    {w()} = models.CharField(max_length={n()})",
        ],
        "js": [
            lambda: f"export function {w()}{w().capitalize()}({w()}, {w()}) {{",
            lambda: f"  const {w()} = await fetch(`/api/{w()}/${{{w()}}}`);",
            lambda: f"  if (!{w()}.{w()}) return null;",
            lambda: f"  this.{w()} = {{ {w()}: {n()}, {w()}: '{w()}' }};",
            lambda: "}",
            lambda: f"// TODO: {w()} the {w()} when the {w()} changes",
            lambda: f"  const apiKey = process.env.{w().upper()}_API_KEY;",
        ],
        "go": [
            lambda: f"func ({w()[0]} *{w().capitalize()}) {w().capitalize()}(ctx context.Context, {w()} string) error {{",
            lambda: f"\t{w()}, err := {w()}.{w().capitalize()}(ctx, {n()})",
            lambda: "\tif err != nil {",
            lambda: f'\t\treturn fmt.Errorf("{w()}: %w", err)',
            lambda: "\t}",
            lambda: f"\t// {w()} is kept until the {w()} closes",
        ],
        "yaml": [
            lambda: f"{w()}:",
            lambda: f"  {w()}: {n()}",
            lambda: f"  {w()}_name: {w()}-{w()}",
            lambda: f"  - name: {w()}",
            lambda: f"    image: registry.local/{w()}:{n()}.{n()}",
            lambda: f"    password: ${{{w().upper()}_PASSWORD}}",
        ],
        "md": [
            lambda: f"## {w().capitalize()} and {w()}",
            lambda: f"The {w()} sends the {w()} to the {w()} every {n()} seconds.",
            lambda: f"- `{w()}`: the {w()} of the {w()}",
            lambda: "",
            lambda: f"Set `{w().upper()}_TOKEN` in the environment before starting.",
        ],
    }
    return {lang: [rnd.choice(tpls)() for _ in range(6000)] for lang, tpls in templates.items()}


# Lines real packages are full of that a naive entropy or keyword rule reports (from a triage of installed packages).
REAL_CODE = [
    "x = _winapi.WAIT_OBJECT_0",
    "request_type = v2025.InitializeRequest",
    "_factory = _HTTP11ClientFactory",
    "    algorithm=AwsSigningAlgorithm.V4_ASYMMETRIC,",
    'credential = f"{policy}:{sas_key}"',
    '"output_token": "nextPageToken",',
    '"GatewayARN": "arn:aws:storagegateway:us-east-1:111122223333:gateway/sgw-12A3456B"',
    "password_keyword = r'(?:secret[-_]?(?:access)?[-_]?key)'",
    '"password": "string?",',
    'b64patch.return_value = b"QIatSt9QkZPyS4QQfdufO8TgkL0="',
    "sqla+postgresql://scott:tiger@localhost/mydatabase",
    '"Sid":"Ec2ViaMgnTagOnCreate"',
]


def _decoys(rnd: random.Random, near_misses: list[str]) -> list[str]:
    g = Gen(f"decoys-{rnd.random()}")
    hexa = "0123456789abcdef"
    return [
        *near_misses,
        f'request_id = "{g.uuid()}"',
        f'commit_sha = "{g(hexa, 40)}"',
        f'checksum = "{g(hexa, 64)}"',
        f"etag: {g(hexa, 32)}",
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        'password = "changeme"',
        'api_key = "<your-api-key>"',
        'DB_PASSWORD = os.environ["DB_PASSWORD"]',
        "token = ${GITHUB_TOKEN}",
        f'"integrity": "sha512-{g("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 86)}=="',
        'handler = "getUserAccountSettingsByIdentifier"',
        "postgres://app@db.internal/app",
        *REAL_CODE,
    ]


def build_corpus(root: Path, size_mb: int, seed: int = 7) -> dict:
    """Write the corpus; returns the ground truth {relpath: [planted line numbers]}."""
    rnd = random.Random(seed)
    pools = _pool(rnd)
    variants = [cases(f"-bench-{i}") for i in range(12)]
    positives = [(rule, name, text) for v in variants for rule, (name, tps, _) in v.items() for text in tps]
    near_misses = [m for rule, (name, _, misses) in variants[0].items() for m in misses if name in ("config.py", ".env")]
    truth: dict[str, list[int]] = {}
    planted_rules: dict[str, str] = {}
    total, i = 0, 0
    ext = {"py": ".py", "js": ".js", "go": ".go", "yaml": ".yaml", "md": ".md"}
    while total < size_mb << 20:
        project = f"project_{i // 40:03d}"
        lang = rnd.choice(list(pools))
        lines = [rnd.choice(pools[lang]) for _ in range(rnd.randint(200, 900))]
        for _ in range(rnd.choice([0, 0, 1, 2, 3])):
            lines.insert(rnd.randrange(len(lines)), rnd.choice(_decoys(rnd, near_misses)))
        rel = f"{project}/src/{lang}/module_{i}{ext[lang]}"
        planted = []
        if rnd.random() < 0.2:
            rule, name, text = rnd.choice(positives)
            if name != "config.py":  # the secret needs its own kind of file (.env, .npmrc, key.pem...)
                rel = f"{project}/deploy/{i}/{name}"
                lines = [rnd.choice(pools["yaml"]) for _ in range(20)]
            at = rnd.randrange(len(lines))
            lines[at:at] = text.split("\n")
            planted.append(at + 1)
            planted_rules[f"{rel}:{at + 1}"] = rule
        data = ("\n".join(lines) + "\n").encode()
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if planted:
            truth[rel] = planted
        total += len(data)
        i += 1
    meta = {"version": VERSION, "size_mb": size_mb, "bytes": total, "files": i, "truth": truth, "rules": planted_rules}
    (root / "truth.json").write_text(json.dumps(meta))
    return meta


def load_or_build(root: Path, size_mb: int) -> dict:
    """The corpus's ground truth, building the corpus first when the cached one is missing, older or of another size."""
    meta_path = root / "truth.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else None
    if not meta or meta.get("version") != VERSION or meta.get("size_mb") != size_mb:
        shutil.rmtree(root, ignore_errors=True)
        meta = build_corpus(root, size_mb)
    return meta


def score(found: list[tuple[str, int]], truth: dict[str, list[int]]) -> dict:
    planted = {(rel, line) for rel, lines in truth.items() for line in lines}
    reported = set(found)
    tp = len(reported & planted)
    return {"tp": tp, "fp": len(reported - planted), "recall": tp / len(planted), "precision": tp / max(1, len(reported)),
            "missed": planted - reported}  # fmt: skip
