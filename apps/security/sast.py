"""Static checks of Python source: bandit (as a library) and Django deployment
checks done on the syntax tree (nothing from the scanned project is imported
or run). Every finding carries an OWASP Top 10 category."""

from __future__ import annotations

import ast
import hashlib
import logging
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from . import owasp
from .findings import Observation

log = logging.getLogger(__name__)
SETTINGS_NAMES = {"INSTALLED_APPS", "MIDDLEWARE", "ROOT_URLCONF", "SECRET_KEY", "DATABASES", "ALLOWED_HOSTS", "WSGI_APPLICATION"}
SQL_METHODS = {"execute", "executemany", "raw", "extra"}


# Rules about hard-coded secrets: their code line (and bandit's message) quote the secret.
SECRET_RULES = {"B105", "B106", "B107", "django-hardcoded-secret-key"}
STRING_LITERAL = re.compile(r"""([bruBRUf]{0,2})(['"])(?:\\.|(?!\2).){1,2000}?\2""")


def mask_literals(text: str) -> str:
    return STRING_LITERAL.sub(lambda m: f"{m.group(1)}{m.group(2)}********{m.group(2)}", text)


def static_issue(rule, title, severity, path, line, owasp_category, cwe, detail, code) -> Observation:
    """A source finding; its identity is the offending line's text, so it survives lines moving.
    Findings about hard-coded secrets keep only masked text (preview, title and identity)."""
    if rule in SECRET_RULES:
        code, title = mask_literals(code), mask_literals(title)
    identity = hashlib.sha256(" ".join(code.split()).encode()).hexdigest()[:16] if code else str(line)
    return Observation(
        kind="source",
        rule=rule,
        title=title,
        severity=severity,
        path=path,
        line=line,
        owasp=owasp_category,
        cwe=cwe,
        detail=detail,
        preview=code[:300],
        identity=identity,
    )


def _bandit():
    """bandit's modules; its optional SARIF formatter (needs sarif_om, unused here) must not log an error at load."""
    stevedore = logging.getLogger("stevedore.extension")
    level = stevedore.level
    stevedore.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():  # stevedore's deprecation notices, raised while bandit loads its plugins
            warnings.simplefilter("ignore", DeprecationWarning)
            from bandit.core import config, manager
    finally:
        stevedore.setLevel(level)
    return config, manager


def run_bandit(base: Path, files: list[Path], progress: Callable[[int], None] | None = None, batch: int = 40) -> Iterator[Observation]:
    """Bandit's issues for these Python files, `progress(done)` after each batch."""
    bandit_config, bandit_manager = _bandit()
    for start in range(0, len(files), batch):
        manager = bandit_manager.BanditManager(bandit_config.BanditConfig(), "file", quiet=True)
        manager.files_list = [str(f) for f in files[start : start + batch]]
        with warnings.catch_warnings():  # stevedore's deprecation notices, raised inside bandit
            warnings.simplefilter("ignore", DeprecationWarning)
            manager.run_tests()
        for issue in manager.get_issue_list():
            path = Path(issue.fname)
            code = _line_of(path, issue.lineno)
            cwe = getattr(issue.cwe, "id", 0) or 0
            yield static_issue(
                issue.test_id,
                f"{issue.test}: {issue.text}"[:300],
                issue.severity.lower(),
                path.relative_to(base).as_posix() if path.is_relative_to(base) else path.name,
                issue.lineno or 0,
                owasp.for_bandit(issue.test_id, cwe),
                f"CWE-{cwe}" if cwe else "",
                f"bandit {issue.test_id} ({issue.test}), confidence {issue.confidence.lower()}.",
                code,
            )
        if progress:
            progress(min(start + batch, len(files)))


def _line_of(path: Path, lineno: int | None) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for i, line in enumerate(fh, 1):
                if i == lineno:
                    return line.strip()[:300]
    except OSError:
        pass
    return ""


# --- Django deployment checks ----------------------------------------------------------


def _is_settings(tree: ast.Module, path: str) -> bool:
    assigned = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}
    return len(assigned & SETTINGS_NAMES) >= 2 or path.endswith("settings.py")


def _formatted(node: ast.AST) -> bool:
    """A string built from variables: f-string, %, .format() or + with a non-constant."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return isinstance(node.left, (ast.Constant, ast.JoinedStr)) and isinstance(getattr(node.left, "value", ""), str)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        parts = [node.left, node.right]
        return any(isinstance(p, ast.Constant) and isinstance(p.value, str) for p in parts) and not all(
            isinstance(p, ast.Constant) for p in parts
        )
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return isinstance(node.func.value, ast.Constant)
    return False


def _issue(rule, title, severity, category, cwe, path, node, lines, detail) -> Observation:
    code = lines[node.lineno - 1].strip()[:300] if 0 < node.lineno <= len(lines) else ""
    return static_issue(rule, title, severity, path, node.lineno, category, cwe, detail, code)


def django_checks(path: str, source: str) -> list[Observation]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    lines = source.splitlines()
    found: list[Observation] = []
    if _is_settings(tree, path):
        found.extend(_settings_checks(tree, path, lines))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for dec in node.decorator_list:
                name = dec.id if isinstance(dec, ast.Name) else getattr(dec, "attr", "")
                if name == "csrf_exempt":
                    found.append(
                        _issue(
                            "django-csrf-exempt",
                            "View exempted from CSRF protection (@csrf_exempt)",
                            "medium",
                            owasp.A01,
                            "CWE-352",
                            path,
                            dec,
                            lines,
                            f"{node.name} accepts cross-site POSTs; authenticate it otherwise or remove the exemption.",
                        )
                    )
        elif isinstance(node, ast.Call):
            found.extend(_call_checks(node, path, lines))
    return found


def _call_checks(node: ast.Call, path: str, lines: list[str]) -> list[Observation]:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    out = []
    if name == "csrf_exempt":
        out.append(
            _issue(
                "django-csrf-exempt",
                "View exempted from CSRF protection (csrf_exempt())",
                "medium",
                owasp.A01,
                "CWE-352",
                path,
                node,
                lines,
                "Wrapped with csrf_exempt: it accepts cross-site POSTs.",
            )
        )
    sql_args = []
    if name in ("execute", "executemany", "raw", "RawSQL") and node.args:
        sql_args = [node.args[0]]
    elif name == "extra":
        for kw in node.keywords:
            if kw.arg in ("where", "select", "tables") and isinstance(kw.value, (ast.List, ast.Tuple, ast.Dict)):
                sql_args += list(kw.value.elts if not isinstance(kw.value, ast.Dict) else kw.value.values)
    if any(_formatted(arg) for arg in sql_args):
        out.append(
            _issue(
                "django-raw-sql-format",
                f"SQL built with string formatting passed to {name}()",
                "high",
                owasp.A03,
                "CWE-89",
                path,
                node,
                lines,
                "Pass values as query parameters (params=[...]) instead of formatting them into the SQL.",
            )
        )
    return out


def _settings_checks(tree: ast.Module, path: str, lines: list[str]) -> list[Observation]:
    out = []
    for node in tree.body:
        if not isinstance(node, ast.Assign):
            continue
        names = {t.id for t in node.targets if isinstance(t, ast.Name)}
        value = node.value
        if "DEBUG" in names and isinstance(value, ast.Constant) and value.value is True:
            out.append(
                _issue(
                    "django-debug-true",
                    "DEBUG = True in settings",
                    "high",
                    owasp.A05,
                    "CWE-489",
                    path,
                    node,
                    lines,
                    "Debug pages leak settings, source and SQL to anyone; read DEBUG from the environment, off by default.",
                )
            )
        if "ALLOWED_HOSTS" in names and _has_wildcard(value):
            out.append(
                _issue(
                    "django-allowed-hosts-wildcard",
                    "ALLOWED_HOSTS accepts any host ('*')",
                    "medium",
                    owasp.A05,
                    "CWE-16",
                    path,
                    node,
                    lines,
                    "Any Host header is accepted (cache poisoning, password-reset links to other hosts); list the real hosts.",
                )
            )
        if "SECRET_KEY" in names and isinstance(value, (ast.Constant, ast.JoinedStr)) and isinstance(getattr(value, "value", ""), str):
            out.append(
                _issue(
                    "django-hardcoded-secret-key",
                    "SECRET_KEY hard-coded in settings",
                    "high",
                    owasp.A07,
                    "CWE-798",
                    path,
                    node,
                    lines,
                    "Anyone with the source can forge sessions and signed data; read it from the environment or a secret store.",
                )
            )
        for flag in ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
            if flag in names and isinstance(value, ast.Constant) and value.value is False:
                out.append(
                    _issue(
                        f"django-{flag.lower().replace('_', '-')}-off",
                        f"{flag} = False",
                        "medium",
                        owasp.A05,
                        "CWE-614",
                        path,
                        node,
                        lines,
                        "The cookie is sent over plain HTTP too; set it True behind HTTPS.",
                    )
                )
    return out


def _has_wildcard(value: ast.AST) -> bool:
    if isinstance(value, ast.Constant):
        return value.value == "*"
    if isinstance(value, (ast.List, ast.Tuple, ast.Set)):
        return any(isinstance(e, ast.Constant) and e.value == "*" for e in value.elts)
    return False


def merge(django: list[Observation], bandit: list[Observation]) -> list[Observation]:
    """Both can report the same line (raw SQL): keep the Django check's more specific finding."""
    taken = {(i.path, i.line, i.owasp) for i in django}
    return django + [i for i in bandit if (i.path, i.line, i.owasp) not in taken]
