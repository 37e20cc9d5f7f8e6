"""Secret-scanner benchmark: this scanner against detect-secrets on one corpus.

Builds (once, cached) a corpus of >= 100 MB of source trees — Python, JS, Go,
YAML, Markdown, .env/.ini files — with planted secrets (the true positives of
every rule, fresh random values) and decoys (every rule's near-misses, UUIDs,
hashes, documentation example keys, placeholders), then scans it with both
tools and prints MB/s per CPU second (ours in one process; detect-secrets'
own `scan_file` spread over worker processes, whose CPU time is counted, so
the run ends sooner on a busy machine), recall and precision.

A finding counts as a true positive when it is on a planted line; any other
finding is a false positive (ours: examples flagged as such are not counted as
findings). Run: `.venv/bin/python bench/secret_scan.py [--size-mb 100] [--corpus DIR]`.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")

import argparse
import json
import multiprocessing
import random
import resource
import time
from collections import Counter
from pathlib import Path

import django

django.setup()

from apps.security.scanning import fingerprint_key  # noqa: E402
from apps.security.secretscan.engine import SecretScanner  # noqa: E402
from tests.security.samples import Gen, cases  # noqa: E402

VERSION = 3
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


def corpus_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != "truth.json")


def run_ours(root: Path, files: list[Path]) -> set[tuple[str, int]]:
    scanner = SecretScanner(fingerprint_key())
    found = set()
    for path in files:
        rel = path.relative_to(root).as_posix()
        if scanner.skip_reason(rel, path.stat().st_size):
            continue
        with open(path, "rb") as fh:
            for hit in scanner.scan_stream(rel, fh) or []:
                if not hit.example:
                    found.add((rel, hit.line))
    return found


def _detect_secrets_chunk(args) -> set[tuple[str, int]]:
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    root, rels = args
    found = set()
    with default_settings():
        collection = SecretsCollection(root=root)
        for rel in rels:
            collection.scan_file(rel)
        for filename, secret in collection:
            found.add((filename, secret.line_number))
    return found


def run_detect_secrets(root: Path, files: list[Path], processes: int = 4) -> set[tuple[str, int]]:
    """detect-secrets' own scan_file per file, spread over worker processes (their CPU time is counted)."""
    rels = [p.relative_to(root).as_posix() for p in files]
    chunks = [(str(root), rels[i :: processes * 8]) for i in range(processes * 8)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        return set().union(*pool.map(_detect_secrets_chunk, chunks))


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the detect-secrets workers)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def score(found: set[tuple[str, int]], truth: dict[str, list[int]]) -> dict:
    planted = {(rel, line) for rel, lines in truth.items() for line in lines}
    tp = len(found & planted)
    return {
        "tp": tp,
        "fp": len(found - planted),
        "missed": planted - found,
        "recall": tp / len(planted),
        "precision": tp / max(1, len(found)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--corpus", default=f"/tmp/opsconsole-secrets-corpus-v{VERSION}")
    args = parser.parse_args()
    root = Path(args.corpus)
    meta_path = root / "truth.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else None
    if not meta or meta.get("version") != VERSION or meta.get("size_mb") != args.size_mb:
        print(f"building a {args.size_mb} MB corpus in {root} ...", flush=True)
        started = time.perf_counter()
        meta = build_corpus(root, args.size_mb)
        print(f"  built in {time.perf_counter() - started:.0f} s", flush=True)
    files = corpus_files(root)
    mb = sum(p.stat().st_size for p in files) / 1e6
    planted = sum(len(v) for v in meta["truth"].values())
    rules = len(set(meta["rules"].values()))
    print(f"corpus: {len(files)} files, {mb:.1f} MB, {planted} planted secrets ({rules} rules), decoys in about 40 % of files\n")
    results = {}
    for name, run in (("opsconsole", run_ours), ("detect-secrets 1.5.0", run_detect_secrets)):
        print(f"scanning with {name} ...", flush=True)
        started, cpu_started = time.perf_counter(), cpu_seconds()
        found = run(root, files)
        seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
        results[name] = {**score(found, meta["truth"]), "seconds": seconds, "cpu": cpu, "mbps": mb / cpu}
    # MB/s per CPU second of the scanning process: the machine is shared, wall time is printed too.
    print(f"\n{'scanner':<22}{'wall s':>8}{'CPU s':>8}{'MB/s':>8}{'recall':>9}{'precision':>11}{'TP':>6}{'FP':>7}")
    for name, r in results.items():
        print(
            f"{name:<22}{r['seconds']:>8.1f}{r['cpu']:>8.1f}{r['mbps']:>8.2f}{r['recall']:>9.3f}{r['precision']:>11.3f}{r['tp']:>6}{r['fp']:>7}"
        )
    ours, theirs = results["opsconsole"], results["detect-secrets 1.5.0"]
    ratio = ours["mbps"] / theirs["mbps"]
    print(f"\nthroughput: {ratio:.1f}x detect-secrets (goal >= 5x); recall {ours['recall']:.3f} vs {theirs['recall']:.3f}")
    missed = Counter(meta["rules"][f"{rel}:{line}"] for rel, line in ours["missed"])
    print(f"missed by opsconsole: {dict(missed) or 'none'}")
    missed = Counter(meta["rules"][f"{rel}:{line}"] for rel, line in theirs["missed"])
    print(f"missed by detect-secrets ({sum(missed.values())}): {len(missed)} rules, e.g. {', '.join(sorted(missed)[:12])}")


if __name__ == "__main__":
    main()
