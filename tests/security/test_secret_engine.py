"""The scanner's mechanics: entropy thresholds, inline ignore, allow-lists,
baseline, streamed windows, binary and generated files, masking."""

import io

from apps.security.secretscan import baseline, checks
from apps.security.secretscan.engine import Policy, SecretScanner, mask

from .samples import ALNUM, HEX, Gen

KEY = b"engine-test-key"
g = Gen("engine")


def test_entropy_thresholds_are_the_documented_ones():
    assert round(checks.base64_threshold(20), 2) == 3.62
    assert round(checks.base64_threshold(24), 2) == 3.88
    assert checks.base64_threshold(32) == checks.base64_threshold(200) == 4.25
    assert checks.entropy("aaaa") == 0.0
    assert checks.entropy("abcd") == 2.0


def test_entropy_detector_takes_random_strings_and_leaves_words_hashes_and_uuids():
    randoms = [g(ALNUM, n) for n in (20, 24, 32, 40, 64)]
    assert all(checks.high_entropy(v, "blob") for v in randoms)
    for word in ["getUserAccountSettingsByIdentifier", "ThisIsAVeryLongClassNameForTesting", "com.example.service.UserRepository2"]:
        assert not checks.high_entropy(word, "name"), word
    assert not checks.high_entropy(g(HEX, 40), "commit")  # a git sha
    assert not checks.high_entropy(g.uuid(), "token")
    assert checks.high_entropy(g(HEX, 64), "api_secret")  # hex under a secret name: 3.0 bits needed
    assert not checks.high_entropy("0" * 16 + "1" * 16 + "2" * 16, "api_secret")  # too regular
    assert not checks.high_entropy(g(ALNUM, 19), "blob")  # below the minimum length


def test_inline_ignore_markers_suppress_a_line():
    scanner = SecretScanner(KEY)
    token = "ghp_" + g(ALNUM, 36)
    text = f'a = "{token}"  # secret-scan:ignore\nb = "{token}"  # pragma: allowlist secret\nc = "{token}"\n'
    assert [h.line for h in scanner.scan_bytes("x.py", text.encode())] == [3]


def test_allow_lists_by_path_and_by_value():
    token = "ghp_" + g(ALNUM, 36)
    scanner = SecretScanner(KEY, policy=Policy(allow_paths=("tests/fixtures/*",), allow_patterns=(r"^ghp_",)))
    assert scanner.skip_reason("tests/fixtures/tokens.txt") == "allow-listed path"
    assert scanner.skip_reason("src/app.py") is None
    assert scanner.scan_bytes("src/app.py", f"t = '{token}'".encode()) == []
    assert SecretScanner(KEY).scan_bytes("src/app.py", f"t = '{token}'".encode())


def test_baseline_suppresses_known_findings_even_when_the_line_moves(tmp_path):
    scanner = SecretScanner(KEY)
    old, new = "ghp_" + g(ALNUM, 36), "glpat-" + g(ALNUM, 20)
    hits = scanner.scan_bytes("app/settings.py", f"A = '{old}'\n".encode())
    path = tmp_path / baseline.FILENAME
    path.write_text(baseline.dump(hits))
    assert old not in path.read_text()  # the baseline holds fingerprints, never secrets
    known = baseline.load(path)
    scanner = SecretScanner(KEY, policy=Policy(baseline=known))
    later = f"# moved down\n\nA = '{old}'\nB = '{new}'\n".encode()
    assert [h.rule for h in scanner.scan_bytes("app/settings.py", later)] == ["gitlab-pat"]
    assert [h.rule for h in scanner.scan_bytes("app/other.py", later)] == ["github-pat", "gitlab-pat"]  # baseline entries are per path


def test_streamed_windows_find_each_secret_once_with_its_line():
    tokens = ["ghp_" + g(ALNUM, 36) for _ in range(40)]
    lines = []
    for i in range(6000):
        lines.append(f'token_{i} = "{tokens[i // 150]}"' if i % 150 == 7 else f"value_{i} = compute({i}, 'padding text for the line')")
    data = ("\n".join(lines) + "\n").encode()

    class Small(SecretScanner):
        WINDOW = 1 << 14  # much smaller than the data: about 20 windows

    whole = SecretScanner(KEY).scan_bytes("big.py", data)
    streamed = Small(KEY).scan_stream("big.py", io.BytesIO(data))
    assert len(whole) == 40
    assert [(h.rule, h.line, h.fingerprint) for h in streamed] == [(h.rule, h.line, h.fingerprint) for h in whole]
    assert [h.line for h in whole] == [i + 1 for i in range(6000) if i % 150 == 7]


def test_binary_generated_vendored_and_large_files_are_skipped():
    scanner = SecretScanner(KEY, max_file_bytes=1 << 20)
    assert scanner.scan_stream("blob.dat", io.BytesIO(b"\x00\x01ghp_" + g(ALNUM, 36).encode())) is None
    assert scanner.skip_reason("web/node_modules/x/index.js") == "dependency or tooling directory"
    assert scanner.skip_reason("package-lock.json") == "lockfile"
    assert scanner.skip_reason("static/app.min.js") == "minified or generated"
    assert scanner.skip_reason("logo.png") == "binary"
    assert scanner.skip_reason("dump.sql", 2 << 20) == "larger than 1 MB"


def test_masking_never_reveals_more_than_a_prefix():
    assert mask("ghp_" + "a1" * 18) == "ghp_********"
    assert mask("short-pass") == "********"
    assert mask("x" * 40, reveal=False) == "********"
    secret = g(ALNUM, 16)
    hits = SecretScanner(KEY).scan_bytes("db.py", f'db_password = "{secret}"  # and url postgres://u:{secret}@h/db'.encode())
    assert hits and all(secret not in h.preview and secret[:6] not in h.preview for h in hits)


def test_fingerprint_is_keyed():
    a, b = SecretScanner(b"key-a"), SecretScanner(b"key-b")
    assert a.fingerprint("github-pat", "x") != b.fingerprint("github-pat", "x")
    assert a.fingerprint("github-pat", "x") == SecretScanner(b"key-a").fingerprint("github-pat", "x")
    assert len(a.fingerprint("r", "s")) == 64
